/*
 * JPEG -> 8-bit RGB through the TurboJPEG API of the system's libjpeg-turbo, with its defaults: the
 * accurate integer IDCT (JDCT_ISLOW) and fancy chroma upsampling: the pixels sharp's libvips (mozjpeg,
 * ISLOW) and djpeg -dct int give, bit for bit (test/imageio/decode.test.ts), at a fifth of sharp's
 * CPU per call. (The prebuilt npm binding @julusian/jpeg-turbo decodes with TJFLAG_FASTDCT, whose
 * pixels differ by up to ~6 levels; that cost the shipped digits model 0.005 VOC07 mAP.)
 *
 *   decodeSync(bytes: Uint8Array): { data: Buffer, width: number, height: number }
 *   decode(bytes: Uint8Array, done: (err: Error | null, result?) => void): void   (on libuv's pool)
 *
 * Any libjpeg warning (a truncated file, corrupt data) is an error: the caller then lets sharp decode
 * the file, which either succeeds or says what is wrong in its own words.
 */
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error(env, NULL, "turbojpeg: N-API call failed: " #call); \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

/* The header: size, and whether RGB output is possible. Returns 0, or -1 with `error` set. */
static int read_header(tjhandle h, const unsigned char *src, size_t length, int *width, int *height, char *error, size_t cap) {
  int subsamp, colorspace;
  if (tjDecompressHeader3(h, src, (unsigned long)length, width, height, &subsamp, &colorspace) != 0) {
    snprintf(error, cap, "%s", tjGetErrorStr2(h));
    return -1;
  }
  if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
    snprintf(error, cap, "CMYK JPEG");
    return -1;
  }
  return 0;
}

static int bytes_arg(napi_env env, napi_value v, unsigned char **data, size_t *length) {
  bool is_typed;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return -1;
  if (napi_get_typedarray_info(env, v, &type, length, (void **)data, &ab, &offset) != napi_ok || type != napi_uint8_array) return -1;
  return 0;
}

/* { data, width, height } */
static napi_value result_object(napi_env env, napi_value buf, int width, int height) {
  napi_value obj, w, h;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_int32(env, width, &w));
  CHECK(napi_create_int32(env, height, &h));
  CHECK(napi_set_named_property(env, obj, "data", buf));
  CHECK(napi_set_named_property(env, obj, "width", w));
  CHECK(napi_set_named_property(env, obj, "height", h));
  return obj;
}

/*
 * The output Buffer is allocated by V8 here, on the calling thread, and the pixels are decoded into
 * it: malloc'd memory handed to JS is freed only when a GC finalizes it, so every frame would get
 * fresh pages, and page faults on a 640x480 frame cost ~3 ms in a VM (7x the decode itself).
 */
typedef struct {
  napi_async_work work;
  napi_ref input;  /* keeps the bytes alive while the pool thread reads them */
  napi_ref output;
  napi_ref callback;
  tjhandle handle;
  unsigned char *src;
  size_t length;
  unsigned char *dst;
  int width;
  int height;
  int rc;
  char error[200];
} Job;

static napi_value start(napi_env env, tjhandle h, unsigned char *src, size_t length, int *width, int *height, unsigned char **dst) {
  char error[200];
  if (read_header(h, src, length, width, height, error, sizeof error) != 0) {
    napi_throw_error(env, NULL, error);
    return NULL;
  }
  napi_value buf;
  CHECK(napi_create_buffer(env, (size_t)*width * (size_t)*height * 3, (void **)dst, &buf));
  return buf;
}

static napi_value DecodeSync(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  unsigned char *src, *dst;
  size_t length;
  if (argc < 1 || bytes_arg(env, argv[0], &src, &length) != 0) {
    napi_throw_type_error(env, NULL, "decodeSync: expected a Uint8Array");
    return NULL;
  }
  tjhandle h = tjInitDecompress();
  if (h == NULL) {
    napi_throw_error(env, NULL, tjGetErrorStr2(NULL));
    return NULL;
  }
  int width, height;
  napi_value buf = start(env, h, src, length, &width, &height, &dst);
  if (buf == NULL) {
    tjDestroy(h);
    return NULL;
  }
  if (tjDecompress2(h, src, (unsigned long)length, dst, width, 0, height, TJPF_RGB, 0) != 0) {
    char error[200];
    snprintf(error, sizeof error, "%s", tjGetErrorStr2(h));
    tjDestroy(h);
    napi_throw_error(env, NULL, error);
    return NULL;
  }
  tjDestroy(h);
  return result_object(env, buf, width, height);
}

static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  job->rc = tjDecompress2(job->handle, job->src, (unsigned long)job->length, job->dst, job->width, 0, job->height, TJPF_RGB, 0);
  if (job->rc != 0) snprintf(job->error, sizeof job->error, "%s", tjGetErrorStr2(job->handle));
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value cb, undefined, buf, args[2];
  napi_get_reference_value(env, job->callback, &cb);
  napi_get_reference_value(env, job->output, &buf);
  napi_get_undefined(env, &undefined);
  if (status != napi_ok || job->rc != 0) {
    napi_value msg;
    napi_create_string_utf8(env, status != napi_ok ? "decode cancelled" : job->error, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &args[0]);
    args[1] = undefined;
  } else {
    napi_get_null(env, &args[0]);
    args[1] = result_object(env, buf, job->width, job->height);
  }
  tjDestroy(job->handle);
  napi_delete_reference(env, job->input);
  napi_delete_reference(env, job->output);
  napi_delete_reference(env, job->callback);
  napi_delete_async_work(env, job->work);
  free(job);
  napi_call_function(env, undefined, cb, 2, args, NULL);
}

static napi_value Decode(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype cbType = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &cbType);
  unsigned char *src;
  size_t length;
  if (argc < 2 || cbType != napi_function || bytes_arg(env, argv[0], &src, &length) != 0) {
    napi_throw_type_error(env, NULL, "decode: expected (Uint8Array, callback)");
    return NULL;
  }
  Job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, NULL, "decode: out of memory");
    return NULL;
  }
  job->handle = tjInitDecompress();
  if (job->handle == NULL) {
    free(job);
    napi_throw_error(env, NULL, tjGetErrorStr2(NULL));
    return NULL;
  }
  job->src = src;
  job->length = length;
  napi_value buf = start(env, job->handle, src, length, &job->width, &job->height, &job->dst);
  if (buf == NULL) {
    tjDestroy(job->handle);
    free(job);
    return NULL;
  }
  napi_value name;
  CHECK(napi_create_reference(env, argv[0], 1, &job->input));
  CHECK(napi_create_reference(env, buf, 1, &job->output));
  CHECK(napi_create_reference(env, argv[1], 1, &job->callback));
  CHECK(napi_create_string_utf8(env, "ssd-turbojpeg decode", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, execute, complete, job, &job->work));
  CHECK(napi_queue_async_work(env, job->work));
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  CHECK(napi_create_function(env, "decodeSync", NAPI_AUTO_LENGTH, DecodeSync, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "decodeSync", fn));
  CHECK(napi_create_function(env, "decode", NAPI_AUTO_LENGTH, Decode, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "decode", fn));
  return exports;
}

NAPI_MODULE_INIT() { return Init(env, exports); }
