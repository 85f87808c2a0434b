/*
 * gzip-inflate: a whole gzip body inflated in one call into a buffer the caller gives, with libdeflate (Debian's
 * libdeflate-dev), about twice zlib's speed and without the thread-pool round trip of node:zlib's streams.
 * `inflateInto(gzip, output)` answers the bytes written, or -1 for anything but one well-formed gzip member that
 * fills at most `output` and ends exactly where `gzip` ends (bad data, a wrong checksum, too little room, trailing
 * bytes or a second member) or that carries a header CRC (FHCRC, which libdeflate does not check and zlib does; no
 * browser writes one): the caller then inflates with node:zlib, whose answers and error codes stay the reference
 * (src/capture/read-upload.ts). One difference remains: libdeflate decodes a few malformed deflate streams that zlib
 * refuses (a code-length repeat running past the end, an unused literal/length code); such a body is accepted only
 * when the gzip CRC-32 and size match what libdeflate decoded, and its bytes are then read like any other.
 */
#define GZIP_FLAG_HEADER_CRC 0x02
#define NAPI_VERSION 8
#include <libdeflate.h>
#include <node_api.h>
#include <stdint.h>

static void free_decompressor(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  libdeflate_free_decompressor((struct libdeflate_decompressor *)data);
}

static napi_value inflate_into(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_value answer;
  void *in = NULL, *out = NULL, *decompressor = NULL;
  size_t in_bytes = 0, out_bytes = 0, used_in = 0, written = 0;
  int64_t result = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 2 &&
      napi_get_buffer_info(env, argv[0], &in, &in_bytes) == napi_ok &&
      napi_get_buffer_info(env, argv[1], &out, &out_bytes) == napi_ok &&
      napi_get_instance_data(env, &decompressor) == napi_ok && decompressor != NULL &&
      !(in_bytes > 3 && (((const uint8_t *)in)[3] & GZIP_FLAG_HEADER_CRC)) &&
      libdeflate_gzip_decompress_ex(decompressor, in, in_bytes, out, out_bytes, &used_in, &written) ==
          LIBDEFLATE_SUCCESS &&
      used_in == in_bytes) {
    result = (int64_t)written;
  }
  napi_create_int64(env, result, &answer);
  return answer;
}

NAPI_MODULE_INIT() {
  /* One decompressor per JavaScript environment (each worker thread loads its own): it is not thread-safe. */
  struct libdeflate_decompressor *decompressor = libdeflate_alloc_decompressor();
  if (decompressor == NULL) return NULL;
  if (napi_set_instance_data(env, decompressor, free_decompressor, NULL) != napi_ok) return NULL;
  napi_value fn;
  if (napi_create_function(env, "inflateInto", NAPI_AUTO_LENGTH, inflate_into, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "inflateInto", fn) != napi_ok) return NULL;
  return exports;
}
