// The reference SSD forward of the import tests, in python (torch): ssd.pytorch's and lufficc/SSD's
// architecture and PriorBox written from their published code, with their state-dict key names.
// `python3 make.py OUT CASES` writes, for each case (ssd-pytorch-300, lufficc-300, lufficc-512):
// NAME.pth (torch.save, seeded random weights), NAME.u8 (an RGB image), NAME.input.f32 (the network
// input in the source's convention), NAME.loc.f32 / NAME.conf.f32 (raw heads) and NAME.priors.f32.
export const REFERENCE_SCRIPT = String.raw`
import itertools, json, math, os, sys
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
out = sys.argv[1]
torch.set_num_threads(2)

def vgg():  # ssd.pytorch / lufficc add_vgg(base['300'|'512'], 3): identical
    layers, c = [], 3
    for v in [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'C', 512, 512, 512, 'M', 512, 512, 512]:
        if v == 'M': layers.append(nn.MaxPool2d(2, 2))
        elif v == 'C': layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else: layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]; c = v
    layers += [nn.MaxPool2d(3, 1, 1), nn.Conv2d(512, 1024, 3, padding=6, dilation=6), nn.ReLU(inplace=True), nn.Conv2d(1024, 1024, 1), nn.ReLU(inplace=True)]
    return nn.ModuleList(layers)

def extras(size):  # add_extras(extras['300'|'512'], 1024) (+ lufficc's SSD512 4x4 conv)
    cfg = [256, 'S', 512, 128, 'S', 256, 128, 256, 128, 256] if size == 300 else [256, 'S', 512, 128, 'S', 256, 128, 'S', 256, 128, 'S', 256]
    layers, c, flag = [], 1024, False
    for k, v in enumerate(cfg):
        if c != 'S':
            if v == 'S': layers.append(nn.Conv2d(c, cfg[k + 1], (1, 3)[flag], stride=2, padding=1))
            else: layers.append(nn.Conv2d(c, v, (1, 3)[flag]))
            flag = not flag
        c = v
    if size == 512: layers += [nn.Conv2d(c, 128, 1), nn.Conv2d(128, 256, 4, padding=1)]
    return nn.ModuleList(layers)

class L2Norm(nn.Module):
    def __init__(self):
        super().__init__(); self.weight = nn.Parameter(torch.empty(512).uniform_(10, 30))
    def forward(self, x):
        return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10) * self.weight.view(1, -1, 1, 1)

def heads(size, C):
    chans = [512, 1024, 512, 256, 256, 256] + ([256] if size == 512 else [])
    k = [4, 6, 6, 6, 4, 4] if size == 300 else [4, 6, 6, 6, 6, 4, 4]
    return nn.ModuleList([nn.Conv2d(ch, n * 4, 3, padding=1) for ch, n in zip(chans, k)]), nn.ModuleList([nn.Conv2d(ch, n * C, 3, padding=1) for ch, n in zip(chans, k)])

def init(m):
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode='fan_out', nonlinearity='relu'); nn.init.uniform_(mod.bias, -0.1, 0.1)

class SsdPytorch(nn.Module):  # key names of amdegroot/ssd.pytorch ssd.py
    def __init__(self, C):
        super().__init__(); self.vgg = vgg(); self.L2Norm = L2Norm(); self.extras = extras(300); self.loc, self.conf = heads(300, C)
    def parts(self): return self.vgg, self.L2Norm, self.extras, self.loc, self.conf

class Luf(nn.Module):  # key names of lufficc/SSD (ssd/modeling/backbone/vgg.py, box_head/box_predictor.py)
    def __init__(self, size, C):
        super().__init__()
        self.backbone = nn.Module(); self.backbone.vgg = vgg(); self.backbone.extras = extras(size); self.backbone.l2_norm = L2Norm()
        self.box_head = nn.Module(); self.box_head.predictor = nn.Module()
        self.box_head.predictor.reg_headers, self.box_head.predictor.cls_headers = heads(size, C)
    def parts(self): return self.backbone.vgg, self.backbone.l2_norm, self.backbone.extras, self.box_head.predictor.reg_headers, self.box_head.predictor.cls_headers

def forward(model, x, C):  # SSD.forward of both projects
    v, l2, ex, loc_h, conf_h = model.parts()
    sources = []
    for k in range(23): x = v[k](x)
    sources.append(l2(x))
    for k in range(23, len(v)): x = v[k](x)
    sources.append(x)
    for k, e in enumerate(ex):
        x = F.relu(e(x))
        if k % 2 == 1: sources.append(x)
    loc = torch.cat([l(s).permute(0, 2, 3, 1).reshape(1, -1) for s, l in zip(sources, loc_h)], 1).view(-1, 4)
    conf = torch.cat([c(s).permute(0, 2, 3, 1).reshape(1, -1) for s, c in zip(sources, conf_h)], 1).view(-1, C)
    return loc, conf

def priors(size):  # PriorBox (ssd.pytorch layers/functions/prior_box.py; lufficc prior_box.py), clip=True
    if size == 300: fm, steps, mins, maxs, ars = [38, 19, 10, 5, 3, 1], [8, 16, 32, 64, 100, 300], [30, 60, 111, 162, 213, 264], [60, 111, 162, 213, 264, 315], [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
    else: fm, steps, mins, maxs, ars = [64, 32, 16, 8, 4, 2, 1], [8, 16, 32, 64, 128, 256, 512], [35.84, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8], [76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.65], [[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]]
    mean = []
    for k, f in enumerate(fm):
        for i, j in itertools.product(range(f), repeat=2):
            f_k = size / steps[k]; cx = (j + 0.5) / f_k; cy = (i + 0.5) / f_k
            s_k = mins[k] / size; mean += [cx, cy, s_k, s_k]
            s_kp = math.sqrt(s_k * (maxs[k] / size)); mean += [cx, cy, s_kp, s_kp]
            for ar in ars[k]:
                mean += [cx, cy, s_k * math.sqrt(ar), s_k / math.sqrt(ar)]; mean += [cx, cy, s_k / math.sqrt(ar), s_k * math.sqrt(ar)]
    return torch.tensor(mean).view(-1, 4).clamp_(max=1, min=0)

def nms(boxes, scores, overlap=0.45, top_k=200):  # ssd.pytorch layers/box_utils.py nms, as written there
    keep = []
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1) * (y2 - y1)
    v, idx = scores.sort(0)
    idx = idx[-top_k:]
    while idx.numel() > 0:
        i = idx[-1]; keep.append(int(i))
        if idx.size(0) == 1: break
        idx = idx[:-1]
        xx1 = torch.clamp(x1[idx], min=float(x1[i])); yy1 = torch.clamp(y1[idx], min=float(y1[i]))
        xx2 = torch.clamp(x2[idx], max=float(x2[i])); yy2 = torch.clamp(y2[idx], max=float(y2[i]))
        inter = torch.clamp(xx2 - xx1, min=0.0) * torch.clamp(yy2 - yy1, min=0.0)
        iou = inter / (area[idx] - inter + area[i])
        idx = idx[iou.le(overlap)]
    return keep

def detect(loc, prob, pri, C, conf_thresh=0.01):  # ssd.pytorch layers/functions/detection.py Detect.forward
    boxes = torch.cat((pri[:, :2] + loc[:, :2] * 0.1 * pri[:, 2:], pri[:, 2:] * torch.exp(loc[:, 2:] * 0.2)), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    dets = []
    for cl in range(1, C):
        mask = prob[:, cl].gt(conf_thresh)
        scores = prob[:, cl][mask]
        if scores.numel() == 0: continue
        b = boxes[mask]
        for k in nms(b, scores):
            dets.append([cl, float(scores[k])] + [float(v) for v in b[k]])
    return dets

def luf_post(loc, scores, pri, size, thresh=0.01, nms_thresh=0.45, max_per_image=100):  # lufficc box_head/inference.py PostProcessor
    from torchvision.ops import batched_nms
    boxes = torch.cat([loc[:, :2] * 0.1 * pri[:, 2:] + pri[:, :2], torch.exp(loc[:, 2:] * 0.2) * pri[:, 2:]], dim=-1)
    boxes = torch.cat([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], dim=-1)
    n, c = scores.shape
    boxes = boxes.view(n, 1, 4).expand(n, c, 4)[:, 1:].reshape(-1, 4)
    labels = torch.arange(c).view(1, c).expand(n, c)[:, 1:].reshape(-1)
    scores = scores[:, 1:].reshape(-1)
    idx = torch.nonzero(scores > thresh).squeeze(1)
    boxes, scores, labels = boxes[idx] * size, scores[idx], labels[idx]
    keep = batched_nms(boxes, scores, labels, nms_thresh)[:max_per_image]
    return [[int(labels[k]), float(scores[k])] + [float(v) / size for v in boxes[k]] for k in keep]

cases = [('ssd-pytorch', 300, 21, 'legacy', None), ('lufficc', 300, 21, 'zip', 'model'), ('lufficc', 512, 21, 'legacy', 'model')]
wanted = sys.argv[2].split(',')
for i, (fmt, size, C, container, wrapper) in enumerate(cases):
    if f'{fmt}-{size}' not in wanted: continue
    torch.manual_seed(i)
    m = SsdPytorch(C) if fmt == 'ssd-pytorch' else Luf(size, C)
    init(m); m.eval()
    with torch.no_grad():
        # Trained SSD heads give logits and offsets of tens at most; kaiming-sized heads on 0..255-scale
        # inputs give hundreds, where float32 rounding alone exceeds 1e-4.
        for h in list(m.parts()[3]) + list(m.parts()[4]): h.weight.mul_(0.05)
    name = f'{fmt}-{size}'
    obj = m.state_dict() if wrapper is None else {wrapper: m.state_dict(), 'iteration': 120000}
    torch.save(obj, os.path.join(out, name + '.pth'), _use_new_zipfile_serialization=(container == 'zip'))
    img = np.random.default_rng(i).integers(0, 256, size=(size, size, 3), dtype=np.uint8)  # RGB
    img.tofile(os.path.join(out, name + '.u8'))
    # ssd.pytorch: BGR minus (104, 117, 123); lufficc: RGB minus INPUT.PIXEL_MEAN (123, 117, 104).
    pix = img[:, :, ::-1].astype(np.float32) - np.array([104, 117, 123], np.float32) if fmt == 'ssd-pytorch' else img.astype(np.float32) - np.array([123, 117, 104], np.float32)
    x = torch.from_numpy(np.ascontiguousarray(pix)).permute(2, 0, 1).unsqueeze(0).contiguous()
    with torch.no_grad():
        loc, conf = forward(m, x, C)
    x.numpy().tofile(os.path.join(out, name + '.input.f32'))
    loc.numpy().astype(np.float32).tofile(os.path.join(out, name + '.loc.f32'))
    conf.numpy().astype(np.float32).tofile(os.path.join(out, name + '.conf.f32'))
    priors(size).numpy().astype(np.float32).tofile(os.path.join(out, name + '.priors.f32'))
    if fmt == 'ssd-pytorch':
        json.dump(detect(loc, F.softmax(conf, dim=-1), priors(size), C), open(os.path.join(out, name + '.dets.json'), 'w'))
    else:
        json.dump(luf_post(loc, F.softmax(conf, dim=-1), priors(size), size), open(os.path.join(out, name + '.dets.json'), 'w'))
`;
