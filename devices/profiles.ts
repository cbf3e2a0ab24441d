/**
 * The built-in device profiles: Jetson Nano/TX2 (JetPack 4), Xavier NX/AGX (JetPack 5), Orin Nano/NX/AGX
 * (JetPack 6), an x86 desktop with an NVIDIA GPU, and CPU only. Each one says which onnxruntime execution
 * providers to try, in order, with onnxruntime's own option names; which GStreamer elements decode and
 * convert; and what the board can and cannot do. The runtime tries `providers` in order and falls back;
 * the stream pipelines are assembled from `gst`; scripts/jetson/build-onnxruntime.sh reads `cudaArch`
 * and `hardware`.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SsdError } from '../core/errors.js';
import type { DeviceProfile, GstElements, ProviderSpec, SoftwareStack } from './types.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * Where TensorRT engines and timing caches live. They must survive re-deploys (building an SSD300
 * engine takes minutes on a Nano), so a deployed service points SSD_CACHE_DIR at a directory outside
 * its release directories.
 */
export function deviceCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.SSD_CACHE_DIR && env.SSD_CACHE_DIR.trim() !== '' ? env.SSD_CACHE_DIR : join(homedir(), '.cache', 'ssd');
}

interface GpuProviderChoices {
  profile: string;
  workspaceBytes: number;
  fp16: boolean;
  /** TensorRT INT8 for QDQ models (explicit quantization); its engines get their own cache directory. */
  int8?: boolean;
  /** CUDA arena cap for boards whose GPU shares a few GB with the CPU; undefined = no cap. */
  cudaMemLimitBytes?: number;
  cacheDir: string;
}

/** TensorRT (FP16, engine + timing caches per profile) -> CUDA -> CPU. */
function gpuProviders(c: GpuProviderChoices): ProviderSpec[] {
  // One cache directory per profile: an engine built for sm_87 must never be offered to sm_72.
  const trtCache = join(c.cacheDir, 'trt', c.int8 ? `${c.profile}-int8` : c.profile);
  const cuda: Record<string, string | number | boolean> = {
    device_id: 0,
    // EXHAUSTIVE (the default) benchmarks every convolution at startup: tens of seconds on a Nano.
    cudnn_conv_algo_search: 'HEURISTIC',
    // The default power-of-two arena growth wastes up to half of a 4-8 GB board's shared memory.
    arena_extend_strategy: 'kSameAsRequested',
  };
  if (c.cudaMemLimitBytes !== undefined) cuda.gpu_mem_limit = c.cudaMemLimitBytes;
  return [
    {
      name: 'tensorrt',
      options: {
        device_id: 0,
        trt_fp16_enable: c.fp16,
        // INT8 only for QDQ models (`ssd quantize`): TensorRT takes the scales from the graph's Q/DQ
        // nodes. A float model with INT8 on would need a calibration table, which nothing here writes.
        trt_int8_enable: c.int8 ?? false,
        trt_engine_cache_enable: true,
        trt_engine_cache_path: trtCache,
        trt_timing_cache_enable: true,
        trt_timing_cache_path: trtCache,
        trt_max_workspace_size: c.workspaceBytes,
      },
    },
    { name: 'cuda', options: cuda },
    { name: 'cpu' },
  ];
}

const JETSON_GST: GstElements = {
  h264Decoder: 'nvv4l2decoder',
  h265Decoder: 'nvv4l2decoder',
  convert: 'nvvidconv',
  csiSource: 'nvarguscamerasrc',
  nvmm: true,
  mjpegDecoder: 'nvv4l2decoder mjpeg=1',
  h264Encoder: 'nvvidconv ! video/x-raw(memory:NVMM),format=NV12 ! nvv4l2h264enc insert-sps-pps=true iframeinterval=30 idrinterval=30',
};

const DESKTOP_GST: GstElements = {
  h264Decoder: 'avdec_h264',
  h265Decoder: 'avdec_h265',
  convert: 'videoconvert ! videoscale',
  nvmm: false,
};

const JETPACK4: SoftwareStack = {
  jetpack: '4.6.x',
  l4t: 'R32',
  ubuntu: '18.04',
  glibc: '2.27',
  cuda: '10.2',
  tensorrt: '8.2',
  cudnn: '8.2',
};
const JETPACK5: SoftwareStack = {
  jetpack: '5.1.x',
  l4t: 'R35',
  ubuntu: '20.04',
  glibc: '2.31',
  cuda: '11.4',
  tensorrt: '8.5',
  cudnn: '8.6',
};
const JETPACK6: SoftwareStack = {
  jetpack: '6.x',
  l4t: 'R36',
  ubuntu: '22.04',
  glibc: '2.35',
  cuda: '12.6',
  tensorrt: '10.3',
  cudnn: '9.3',
};

const JETPACK4_LIMITS = [
  'JetPack 4 ships Ubuntu 18.04 with glibc 2.27, but the official Node.js >= 18 builds need glibc >= 2.28, so Node 20 does not start on the host: run the runtime in a container with a newer arm64 userland, or build Node 20 from source with a newer toolchain, or move to a board that JetPack 5+ supports.',
  'JetPack 4 has CUDA 10.2 and TensorRT 8.2, older than the pinned onnxruntime needs for its CUDA/TensorRT providers (CUDA 12, TensorRT 10): GPU inference needs an older onnxruntime built with scripts/jetson/build-onnxruntime.sh --ort-version (and onnxruntime-node pinned to the same version); otherwise the runtime falls back to the CPU.',
  'No fast INT8: TensorRT offers no INT8 on this GPU (sm_53/sm_62); use FP16.',
];

const INT8_LIMIT =
  'INT8 on the tensor cores takes a QDQ model from `ssd quantize --activations int8` (TensorRT takes signed, symmetric INT8 only): the runtime then turns on trt_int8_enable (FP16 for the layers left float); float models run FP16.';

const DLA_LIMIT =
  'The DLA cores are opt-in (Detector.load({ dlaCore }) or SSD_DLA_CORE): the trunk (conv, ReLU, max-pool) runs there in INT8/FP16, while L2Norm, the heads\' reshapes, softmax, decode and NMS fall back to the GPU (docs/devices.md); it frees the GPU rather than beating it.';

const JETPACK5_LIMITS = [
  'JetPack 5 has CUDA 11.4 and TensorRT 8.5, older than the pinned onnxruntime needs for its CUDA/TensorRT providers (CUDA 12, TensorRT 10): build an older onnxruntime with scripts/jetson/build-onnxruntime.sh --ort-version 1.15.1 (and pin onnxruntime-node to the same version), or the runtime falls back to the CPU.',
  INT8_LIMIT,
  DLA_LIMIT,
];

const JETPACK6_LIMITS = [
  'The pinned onnxruntime needs TensorRT 10 for its TensorRT provider: JetPack 6.1 and later ship it; on JetPack 6.0 (TensorRT 8.6) the build script builds the CUDA provider only.',
  INT8_LIMIT,
];

const NMS_LIMIT =
  'Export with --postprocess decode (NMS in the runtime): onnx-tensorrt leaves NonMaxSuppression to onnxruntime, so an nms graph splits into several TensorRT engines, one of them rebuilt whenever a larger detection count appears (multi-second stalls); an nms model runs with NonMaxSuppression excluded from TensorRT (trt_op_types_to_exclude).';

const STOCK_BINDING_LIMIT =
  'The stock onnxruntime-node binding forwards only device_id to TensorRT/CUDA; FP16, the engine cache and the timing cache need the binding built by scripts/jetson/build-onnxruntime.sh (which patches it).';

function jetson(p: {
  name: string;
  description: string;
  software: SoftwareStack;
  cudaArch: number;
  memoryGiB: number;
  cpuCores: number;
  workspaceBytes: number;
  cudaMemLimitBytes?: number;
  suggestedInputSize: number;
  threads: number;
  limits: string[];
  match: { model?: string[]; compatible?: string[] };
  cacheDir: string;
  /** Fast INT8 (sm_72 and later): INT8 QDQ models get TensorRT INT8. */
  int8?: boolean;
  dlaCores?: number;
}): DeviceProfile {
  const platform = `jetpack${p.software.jetpack.split('.')[0]}`;
  return {
    name: p.name,
    description: p.description,
    platform,
    providers: gpuProviders({
      profile: p.name,
      workspaceBytes: p.workspaceBytes,
      fp16: true,
      cudaMemLimitBytes: p.cudaMemLimitBytes,
      cacheDir: p.cacheDir,
    }),
    ...(p.int8 ? {
      int8Providers: gpuProviders({
        profile: p.name, workspaceBytes: p.workspaceBytes, fp16: true, int8: true, cudaMemLimitBytes: p.cudaMemLimitBytes, cacheDir: p.cacheDir,
      }),
    } : {}),
    ...(p.dlaCores ? { dlaCores: p.dlaCores } : {}),
    gst: JETSON_GST,
    cudaArch: p.cudaArch,
    suggestedInputSize: p.suggestedInputSize,
    suggestedPrecision: 'fp16',
    suggestedPostprocess: 'decode',
    threads: p.threads,
    limits: [...p.limits, NMS_LIMIT, STOCK_BINDING_LIMIT],
    hardware: { memoryGiB: p.memoryGiB, cpuCores: p.cpuCores },
    software: p.software,
    match: p.match,
  };
}

/**
 * The profiles with their TensorRT caches under `cacheDir`, in detection order: the Orin patterns come
 * before the Nano one because "Jetson Orin Nano" also contains "Jetson ... Nano". `ssd deploy` builds
 * them for the device's cache directory; everything else uses PROFILES.
 */
export function buildProfiles(cacheDir: string): DeviceProfile[] {
  return [
    jetson({
      name: 'orin-agx',
      description: 'Jetson AGX Orin (32/64 GB), JetPack 6',
      software: JETPACK6,
      cudaArch: 87,
      memoryGiB: 32,
      cpuCores: 12,
      workspaceBytes: 4 * GiB,
      suggestedInputSize: 512,
      threads: 8,
      limits: [...JETPACK6_LIMITS, DLA_LIMIT],
      match: { model: ['AGX Orin'], compatible: ['p3701'] },
      int8: true,
      dlaCores: 2,
      cacheDir,
    }),
    jetson({
      name: 'orin-nx',
      description: 'Jetson Orin NX (8/16 GB), JetPack 6',
      software: JETPACK6,
      cudaArch: 87,
      memoryGiB: 8,
      cpuCores: 6,
      workspaceBytes: 2 * GiB,
      suggestedInputSize: 512,
      threads: 6,
      limits: [...JETPACK6_LIMITS, DLA_LIMIT],
      match: { model: ['Orin NX'], compatible: ['p3767-000[01]'] },
      int8: true,
      dlaCores: 1,
      cacheDir,
    }),
    jetson({
      name: 'orin-nano',
      description: 'Jetson Orin Nano (4/8 GB), JetPack 6',
      software: JETPACK6,
      cudaArch: 87,
      memoryGiB: 8,
      cpuCores: 6,
      workspaceBytes: 1 * GiB,
      suggestedInputSize: 300,
      threads: 6,
      limits: [
        ...JETPACK6_LIMITS,
        'No DLA and no hardware video encoder (decoding is in hardware); the 4 GB module should stay at 300x300 input.',
      ],
      match: { model: ['Orin Nano'], compatible: ['p3767-000[3-5]', 'p3768'] },
      int8: true,
      cacheDir,
    }),
    jetson({
      name: 'xavier-agx',
      description: 'Jetson AGX Xavier (16/32/64 GB), JetPack 5',
      software: JETPACK5,
      cudaArch: 72,
      memoryGiB: 32,
      cpuCores: 8,
      workspaceBytes: 2 * GiB,
      suggestedInputSize: 512,
      threads: 8,
      limits: [...JETPACK5_LIMITS],
      match: { model: ['AGX Xavier', '^Jetson-AGX$'], compatible: ['p2888', 'p2822', 'p2972', 'galen'] },
      int8: true,
      dlaCores: 2,
      cacheDir,
    }),
    jetson({
      name: 'xavier-nx',
      description: 'Jetson Xavier NX (8/16 GB), JetPack 5',
      software: JETPACK5,
      cudaArch: 72,
      memoryGiB: 8,
      cpuCores: 6,
      workspaceBytes: 1 * GiB,
      suggestedInputSize: 300,
      threads: 6,
      limits: [...JETPACK5_LIMITS],
      match: { model: ['Xavier NX'], compatible: ['p3668', 'p3509'] },
      int8: true,
      dlaCores: 2,
      cacheDir,
    }),
    jetson({
      name: 'jetson-tx2',
      description: 'Jetson TX2 / TX2 NX / TX2i (4-8 GB), JetPack 4',
      software: JETPACK4,
      cudaArch: 62,
      memoryGiB: 8,
      cpuCores: 6,
      workspaceBytes: 1 * GiB,
      cudaMemLimitBytes: 3 * GiB,
      suggestedInputSize: 300,
      // The two Denver cores and four A57 cores differ in speed; four threads avoid waiting on the slowest.
      threads: 4,
      limits: [...JETPACK4_LIMITS],
      match: { model: ['Jetson TX2', 'quill', 'lanai'], compatible: ['p2771', 'p3310', 'p3489', 'p3636', 'tegra186'] },
      cacheDir,
    }),
    jetson({
      name: 'jetson-nano',
      description: 'Jetson Nano (2/4 GB), JetPack 4',
      software: JETPACK4,
      cudaArch: 53,
      memoryGiB: 4,
      cpuCores: 4,
      workspaceBytes: 512 * MiB,
      cudaMemLimitBytes: 1536 * MiB,
      suggestedInputSize: 300,
      threads: 4,
      limits: [
        ...JETPACK4_LIMITS,
        '4 GB shared between CPU and GPU: building the TensorRT engine for SSD300 needs swap (4 GB recommended); the first start builds it (minutes) and later starts load it from the engine cache.',
        'SSD512 runs at a few frames per second at best; keep 300x300 input.',
      ],
      match: { model: ['Jetson Nano'], compatible: ['p3448', 'p3450', 'p3541', 'tegra210'] },
      cacheDir,
    }),
    {
      name: 'x86-cuda',
      description: 'Desktop or server with an NVIDIA GPU (CUDA 12, optional TensorRT 10)',
      platform: 'x86-cuda',
      providers: gpuProviders({ profile: 'x86-cuda', workspaceBytes: 4 * GiB, fp16: true, cacheDir }),
      gst: DESKTOP_GST,
      suggestedInputSize: 512,
      suggestedPrecision: 'fp16',
      suggestedPostprocess: 'decode',
      limits: [
        'On linux-x64, npm install of onnxruntime-node downloads its CUDA 12 and TensorRT provider libraries from NuGet (ONNXRUNTIME_NODE_INSTALL=skip skips them); they need CUDA 12, cuDNN 9 and, for TensorRT, the TensorRT 10 libraries on the loader path.',
        STOCK_BINDING_LIMIT,
        'GStreamer decodes on the CPU (avdec_h264); nvh264dec from gst-plugins-bad can replace it where that plugin is built with NVCODEC.',
      ],
    },
    {
      name: 'cpu',
      description: 'Any machine, CPU only (onnxruntime CPU provider)',
      platform: 'cpu',
      providers: [{ name: 'cpu' }],
      gst: DESKTOP_GST,
      suggestedInputSize: 300,
      suggestedPrecision: 'fp32',
      suggestedPostprocess: 'decode',
      limits: ['SSD300 VGG16 is heavy for a CPU: expect a few frames per second at most; prefer the smallest model that does the job.'],
    },
  ];
}

export const PROFILES: DeviceProfile[] = buildProfiles(deviceCacheDir());

export function listProfiles(): DeviceProfile[] {
  return PROFILES.slice();
}

export function getProfile(name: string): DeviceProfile {
  const profile = PROFILES.find((p) => p.name === name);
  if (!profile) {
    throw new SsdError(`unknown device profile "${name}" (known: ${PROFILES.map((p) => p.name).join(', ')})`);
  }
  return profile;
}

/**
 * The ops an `nms` model keeps out of TensorRT. onnx-tensorrt reports NonMaxSuppression as unsupported
 * to onnxruntime, which then cuts the graph into engines around it; the engine after it is fed a
 * data-dependent shape and rebuilt for every larger detection count. Excluded, NMS and what follows run
 * on CUDA/CPU in one piece and the trunk stays one static-shape engine.
 */
export const NMS_TRT_EXCLUDED_OPS = ['NonMaxSuppression', 'NonZero', 'RoiAlign'] as const;

/**
 * TensorRT options with `ops` added to trt_op_types_to_exclude (onnxruntime >= 1.18). An older build
 * (the JetPack 4/5 ones) refuses the unknown key: TensorRT is then skipped, with that reason in the
 * provider line, and the model runs on CUDA, which is still better than a rebuilt engine per frame.
 */
function excludeFromTensorRt(p: ProviderSpec, ops: readonly string[]): ProviderSpec {
  if (p.name !== 'tensorrt') return p;
  const current = typeof p.options?.trt_op_types_to_exclude === 'string' ? p.options.trt_op_types_to_exclude.split(',').filter(Boolean) : [];
  const merged = [...new Set([...current, ...ops])].join(',');
  return { ...p, options: { ...p.options, trt_op_types_to_exclude: merged } };
}

/**
 * The providers to open a model with on `profile`: an INT8 model gets the profile's INT8 list where
 * the board has one; an `nms` model excludes NMS from TensorRT (NMS_TRT_EXCLUDED_OPS); `dlaCore` puts
 * TensorRT on that DLA core (GPU fallback for the layers DLA lacks: onnxruntime's TensorRT provider
 * always allows it), with its own engine cache.
 */
export function providersFor(
  profile: DeviceProfile,
  o: { precision?: 'fp32' | 'fp16' | 'int8'; dlaCore?: number; postprocess?: 'none' | 'decode' | 'nms' } = {},
): ProviderSpec[] {
  const chosen = o.precision === 'int8' && profile.int8Providers ? profile.int8Providers : profile.providers;
  const base = o.postprocess === 'nms' ? chosen.map((p) => excludeFromTensorRt(p, NMS_TRT_EXCLUDED_OPS)) : chosen;
  if (o.dlaCore === undefined) return base;
  const cores = profile.dlaCores ?? 0;
  if (!Number.isInteger(o.dlaCore) || o.dlaCore < 0 || o.dlaCore >= cores) {
    throw new SsdError(`DLA core ${o.dlaCore}: device ${profile.name} has ${cores === 0 ? 'no DLA' : `DLA cores 0..${cores - 1}`}`);
  }
  return base.map((p) => {
    if (p.name !== 'tensorrt') return p;
    const opts = p.options ?? {};
    const dir = (k: string) => (typeof opts[k] === 'string' ? `${opts[k] as string}-dla${o.dlaCore}` : opts[k]!);
    return {
      ...p,
      options: {
        ...opts, trt_dla_enable: true, trt_dla_core: o.dlaCore!,
        ...(opts.trt_engine_cache_path !== undefined ? { trt_engine_cache_path: dir('trt_engine_cache_path') } : {}),
        ...(opts.trt_timing_cache_path !== undefined ? { trt_timing_cache_path: dir('trt_timing_cache_path') } : {}),
      },
    };
  });
}

/** Whether a profile is for a Jetson (has a JetPack software stack). */
export function isJetson(profile: DeviceProfile): boolean {
  return profile.software !== undefined;
}
