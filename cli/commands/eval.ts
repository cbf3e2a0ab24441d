import { existsSync } from 'node:fs';
import { choiceFlag, numberFlag, parseFlags, type Command } from '../args.js';
import { SsdError } from '../../core/errors.js';
import { EVAL_METRICS, evalSummary, evaluate, formatEvalTable, isCocoGroundTruth, loadDetections, loadGroundTruth } from '../../core/eval/index.js';

const USAGE = `Usage: ssd eval --gt <VOC dir(s) | COCO annotations.json> --dt <results.json | comp4 dir> [options]

Mean average precision of detections against ground truth, computed as the VOC devkit
(voc07, voc12) and pycocotools (coco) do.

Options:
  --gt PATH         ground truth: a VOC year directory (VOC2007/), a VOCdevkit-like directory
                    holding several (VOC2007 + VOC2012 are joined), or a COCO instances JSON.
                    Repeat --gt (or separate with commas) to join several VOC directories.
  --dt PATH         detections: a COCO results JSON ([{image_id, category_id, bbox:[x,y,w,h], score}];
                    "ssd detect --gt ... --coco-results FILE" writes one) or a directory of VOC comp4
                    files (comp4_det_<split>_<class>.txt; "ssd detect --gt ... --voc-results DIR").
                    Any finite box is scored (also outside the image); NaN, infinite or inverted boxes
                    are refused.
  --metric M        voc07 (11-point), voc12 (VOC2010+ all-point) or coco (AP@[.5:.95] and the
                    12 standard stats). Default: voc07 for VOC ground truth, coco for COCO.
  --split NAME      VOC split, ImageSets/Main/<NAME>.txt (default: test)
  --iou T           IoU threshold of the VOC metrics (default 0.5)
  --json            print one JSON object {"metric", "map", "ap": {class: AP}} (+ "stats" for coco)
  -h, --help        this text

Examples:
  ssd detect models/digits-ssd.onnx data/digits/VOC2007/JPEGImages --gt data/digits/VOC2007 --split test \\
    --threshold 0.01 --voc-results runs/digits/comp4
  ssd eval --gt data/digits/VOC2007 --split test --dt runs/digits/comp4 --metric voc07
  ssd eval --gt VOCdevkit/VOC2007 --dt dets.json --metric voc12 --json
  ssd eval --gt annotations/instances_val2017.json --dt results.json --metric coco`;

const command: Command = {
  name: 'eval',
  summary: 'VOC07/VOC12/COCO mAP of detections against ground truth',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const { values } = parseFlags(
      'eval',
      argv,
      {
        gt: { type: 'string', multiple: true },
        dt: { type: 'string' },
        metric: { type: 'string' },
        split: { type: 'string' },
        iou: { type: 'string' },
        json: { type: 'boolean' },
      },
      false,
    );
    // "--gt VOC2007,VOC2012" as well as repeated --gt (a path that exists as written is kept whole).
    const gtPaths = (values.gt ?? []).flatMap((p) => (existsSync(p) ? [p] : p.split(',').filter((x) => x !== '')));
    if (gtPaths.length === 0) throw new SsdError('--gt is required (see "ssd eval --help")');
    if (!values.dt) throw new SsdError('--dt is required (see "ssd eval --help")');
    const coco = isCocoGroundTruth(gtPaths);
    const metric = choiceFlag('metric', values.metric, EVAL_METRICS, coco ? 'coco' : 'voc07');
    const iou = values.iou === undefined ? undefined : numberFlag('iou', values.iou, 0.5, 0, 1);
    if (iou !== undefined && metric === 'coco') throw new SsdError('--iou applies to voc07/voc12 only (coco uses 0.50:0.05:0.95)');
    const split = values.split ?? 'test';
    const gt = loadGroundTruth(gtPaths, split);
    const dets = loadDetections(values.dt, gt, split);
    const result = evaluate(gt, dets, metric, iou);
    if (values.json) {
      console.log(JSON.stringify(evalSummary(result)));
    } else {
      console.log(formatEvalTable(result, `${gt.name}: ${gt.samples.length} images, ${dets.length} detections`));
    }
    return 0;
  },
};
export default command;
