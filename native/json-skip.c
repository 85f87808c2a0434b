/*
 * json-skip: capture's one native loop. `skip(buffer, position)` steps over the compact JSON value that starts at
 * `position` and answers where it ends, or -1 when the bytes there are not one the scanner takes
 * (src/capture/snapshot-scanner.ts, whose `skipValue` this does exactly: the same grammar, no whitespace, strings free
 * of control bytes with only JSON's escapes; UTF-8 is checked before the scan). Nearly all of a full snapshot's bytes
 * go through it: in JavaScript it was the largest share of capture's CPU.
 *
 * Built by scripts/build-native against Node-API only (no V8 headers), so one build serves every Node version.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Bytes a string holds as they are: all but '"', '\' and control bytes. */
static inline int is_plain(uint8_t c) { return c >= 0x20 && c != '"' && c != '\\'; }

static inline int is_hex(uint8_t c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

/* p is just past the opening quote; answers the byte after the closing quote, or NULL. */
static const uint8_t *skip_string(const uint8_t *p, const uint8_t *end) {
  for (;;) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i control = _mm_set1_epi8(0x1f);
    while (end - p >= 16) {
      __m128i v = _mm_loadu_si128((const __m128i *)p);
      __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                     _mm_cmpeq_epi8(_mm_min_epu8(v, control), v)); /* v <= 0x1f, unsigned */
      int mask = _mm_movemask_epi8(special);
      if (mask != 0) {
        p += __builtin_ctz((unsigned)mask);
        goto special;
      }
      p += 16;
    }
#endif
    while (p < end && is_plain(*p)) p++;
    if (p >= end) return NULL;
#if defined(__SSE2__)
  special:
#endif
    if (*p == '"') return p + 1;
    if (*p != '\\' || end - p < 2) return NULL;
    switch (p[1]) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        p += 2;
        break;
      case 'u':
        if (end - p < 6 || !is_hex(p[2]) || !is_hex(p[3]) || !is_hex(p[4]) || !is_hex(p[5])) return NULL;
        p += 6;
        break;
      default:
        return NULL;
    }
  }
}

/* A run of at least one digit from p: where it ends, or NULL. */
static const uint8_t *digits(const uint8_t *p, const uint8_t *end) {
  const uint8_t *start = p;
  while (p < end && *p >= '0' && *p <= '9') p++;
  return p == start ? NULL : p;
}

static const uint8_t *skip_number(const uint8_t *p, const uint8_t *end) {
  if (*p == '-') p++;
  if (p < end && *p == '0') p++;
  else if (!(p = digits(p, end))) return NULL;
  if (p < end && *p == '.' && !(p = digits(p + 1, end))) return NULL;
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (!(p = digits(p, end))) return NULL;
  }
  return p;
}

static const uint8_t *skip_literal(const uint8_t *p, const uint8_t *end, const char *literal, size_t length) {
  if ((size_t)(end - p) < length || memcmp(p, literal, length) != 0) return NULL;
  return p + length;
}

/* `"key":` at p: the byte after the colon, or NULL. */
static const uint8_t *member_key(const uint8_t *p, const uint8_t *end) {
  if (p >= end || *p != '"') return NULL;
  p = skip_string(p + 1, end);
  if (p == NULL || p >= end || *p != ':') return NULL;
  return p + 1;
}

enum { IN_OBJECT = 1, IN_ARRAY = 2 };

/* The end offset of the value at `start`, or -1. Nesting is followed on a stack of its own, so no depth overflows. */
static int64_t skip_value(const uint8_t *base, size_t length, size_t start) {
  const uint8_t *p = base + start;
  const uint8_t *end = base + length;
  uint8_t inline_stack[256];
  uint8_t *stack = inline_stack;
  size_t capacity = sizeof inline_stack;
  size_t depth = 0;
  int64_t result = -1;
  for (;;) {
    /* A value is expected at p. */
    if (p >= end) goto done;
    switch (*p) {
      case '"':
        p = skip_string(p + 1, end);
        break;
      case '{':
      case '[': {
        uint8_t kind = *p == '{' ? IN_OBJECT : IN_ARRAY;
        p++;
        if (p < end && *p == (kind == IN_OBJECT ? '}' : ']')) {
          p++;
          break;
        }
        if (depth == capacity) {
          size_t grown = capacity * 2;
          uint8_t *next = stack == inline_stack ? malloc(grown) : realloc(stack, grown);
          if (next == NULL) goto done;
          if (stack == inline_stack) memcpy(next, inline_stack, capacity);
          stack = next;
          capacity = grown;
        }
        stack[depth++] = kind;
        if (kind == IN_OBJECT && !(p = member_key(p, end))) goto done;
        continue;
      }
      case '-':
      case '0': case '1': case '2': case '3': case '4':
      case '5': case '6': case '7': case '8': case '9':
        p = skip_number(p, end);
        break;
      case 't':
        p = skip_literal(p, end, "true", 4);
        break;
      case 'f':
        p = skip_literal(p, end, "false", 5);
        break;
      case 'n':
        p = skip_literal(p, end, "null", 4);
        break;
      default:
        goto done;
    }
    if (p == NULL) goto done;
    /* After a value: close what ends here, until a ',' calls for the next value. */
    for (;;) {
      if (depth == 0) {
        result = (int64_t)(p - base);
        goto done;
      }
      if (p >= end) goto done;
      uint8_t kind = stack[depth - 1];
      if (*p == ',') {
        p++;
        if (kind == IN_OBJECT && !(p = member_key(p, end))) goto done;
        break;
      }
      if (*p != (kind == IN_OBJECT ? '}' : ']')) goto done;
      p++;
      depth--;
    }
  }
done:
  if (stack != inline_stack) free(stack);
  return result;
}

static napi_value skip(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_value answer;
  void *data = NULL;
  size_t length = 0;
  int64_t position = -1;
  int64_t result = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 2 &&
      napi_get_buffer_info(env, argv[0], &data, &length) == napi_ok &&
      napi_get_value_int64(env, argv[1], &position) == napi_ok && position >= 0 && (uint64_t)position < length) {
    result = skip_value((const uint8_t *)data, length, (size_t)position);
  }
  napi_create_int64(env, result, &answer);
  return answer;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "skip", NAPI_AUTO_LENGTH, skip, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "skip", fn) != napi_ok) return NULL;
  return exports;
}
