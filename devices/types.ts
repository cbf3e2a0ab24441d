/**
 * Device profiles as data: which execution providers to try (in order, with their options), which
 * GStreamer elements each kind of source uses, and what the hardware can and cannot do. The runtime
 * and the stream pipelines read these; `devices/profiles.ts` holds the built-in ones.
 */

export type ExecutionProviderName = 'tensorrt' | 'cuda' | 'cpu';

export interface ProviderSpec {
  name: ExecutionProviderName;
  /**
   * Provider options under onnxruntime's own names (TensorRT: `device_id`, `trt_fp16_enable`,
   * `trt_engine_cache_enable`, `trt_engine_cache_path`, `trt_timing_cache_enable`,
   * `trt_timing_cache_path`, `trt_max_workspace_size`; CUDA: `device_id`, ...). The stock Node
   * binding forwards only the device id; the Jetson build script patches it to forward the rest.
   */
  options?: Record<string, string | number | boolean>;
}

/** GStreamer element choices for one device (see runtime/stream for how pipelines are assembled). */
export interface GstElements {
  /** H.264 depayloaded stream -> raw video, e.g. "nvv4l2decoder" or "avdec_h264". */
  h264Decoder: string;
  h265Decoder: string;
  /** Colour conversion/scaling to system-memory RGB/BGR, e.g. "nvvidconv" or "videoconvert ! videoscale". */
  convert: string;
  /** CSI camera source, e.g. "nvarguscamerasrc"; undefined where there is none. */
  csiSource?: string;
  /** Whether decoded frames live in NVMM memory (caps "video/x-raw(memory:NVMM)"). */
  nvmm: boolean;
  /**
   * MJPEG (USB camera) decoder for an explicit chain, e.g. "nvv4l2decoder mjpeg=1" on a Jetson;
   * undefined = decodebin picks one. With it set, files and v4l2 sources get explicit
   * demux/parse/decoder chains (as jetson-utils builds them) instead of decodebin.
   */
  mjpegDecoder?: string;
  /**
   * Raw video (system or NVMM memory) -> H.264, for `ssd stream --record` on raw sources, with about one
   * keyframe a second (a clip starts at a keyframe). Undefined: x264enc (runtime/stream/pipelines.ts).
   */
  h264Encoder?: string;
}

export interface DeviceProfile {
  name: string;
  description: string;
  /** e.g. "jetpack4", "jetpack5", "jetpack6", "x86-cuda", "cpu" */
  platform: string;
  providers: ProviderSpec[];
  gst: GstElements;
  /** CUDA compute capability as an integer (Nano 53, TX2 62, Xavier 72, Orin 87). */
  cudaArch?: number;
  suggestedInputSize: number;
  suggestedPrecision: 'fp32' | 'fp16' | 'int8';
  /**
   * The `ssd export-onnx --postprocess` to use here. `decode` on every GPU profile: under
   * onnxruntime-TensorRT an `nms` graph splits into several engines around NonMaxSuppression, one fed
   * by a data-dependent shape and rebuilt whenever a larger detection count appears (multi-second stalls).
   */
  suggestedPostprocess: 'decode' | 'nms' | 'none';
  /**
   * Fail with one line instead of falling back to the CPU when no GPU provider loads (what
   * `--require-gpu` does for one run). Built-in profiles leave it off.
   */
  requireGpu?: boolean;
  /**
   * Providers for an INT8 QDQ model (`ssd quantize`), where the board has fast INT8 (Xavier, Orin):
   * TensorRT with trt_int8_enable (explicit quantization from the graph's Q/DQ nodes: no calibration
   * table) and FP16 for the layers left float. Undefined: int8 models use `providers` (Nano/TX2, CPU).
   */
  int8Providers?: ProviderSpec[];
  /** NVDLA cores the board has (Xavier AGX/NX 2, Orin AGX 2, Orin NX 1-2, others none). */
  dlaCores?: number;
  /** onnxruntime intra-op threads; undefined = one per core (runtime/session.ts defaultThreads). */
  threads?: number;
  /** Known limits a user must know about, one sentence each. */
  limits: string[];
  /** Board facts the build script and the docs use (Jetsons only). */
  hardware?: { memoryGiB: number; cpuCores: number };
  /** The software a Jetson profile assumes (Jetsons only); x86 and CPU profiles leave it out. */
  software?: SoftwareStack;
  /**
   * Regular expressions (source text, case-insensitive) matched against /proc/device-tree/model, then
   * /proc/device-tree/compatible; the first profile in PROFILES order that matches wins.
   */
  match?: { model?: string[]; compatible?: string[] };
}

/** The JetPack a Jetson profile is written for. */
export interface SoftwareStack {
  jetpack: string;
  /** L4T major release as in /etc/nv_tegra_release ("R32" = JetPack 4, "R35" = 5, "R36" = 6). */
  l4t: string;
  ubuntu: string;
  glibc: string;
  cuda: string;
  tensorrt: string;
  cudnn: string;
}
