/*
 * skiff_ecdsa: ECDSA signature verification of a raw EC public key, for the CA's CSR check.
 *
 * Why this exists: on Node 20 / OpenSSL 3.0 every public route from a CSR's key bytes to a
 * KeyObject (SPKI DER through the decoder framework, JWK, WebCrypto `raw`) costs about as much
 * as the ECDSA verification itself, because each builds a new EC group and runs a full public-key
 * check (a scalar multiplication by the group order). This addon does the same verification with
 * the OpenSSL that Node itself carries (its exported symbols; headers from Node's include/node):
 * one EC_KEY per curve, kept for the life of the environment, takes each CSR's point in turn.
 *
 * What is checked, and by whom:
 * - The point: SEC 1 §2.3.4 uncompressed form only (0x04 || X || Y, 65 bytes on P-256, 97 on
 *   P-384), decoded by EC_POINT_oct2point, which refuses coordinates outside the field and points
 *   not on the curve. P-256 and P-384 have cofactor 1, so a point on the curve other than the
 *   point at infinity (which has no uncompressed form) is a valid public key (SEC 1 §3.2.2.1).
 * - The signature: ECDSA_verify, which parses the DER `ECDSA-Sig-Value` and refuses any encoding
 *   that does not re-encode to the same bytes (no BER leniency), then verifies (FIPS 186-4 §6.4)
 *   over the digest the caller computed with the CSR's signature hash.
 *
 * JS API (curve 0 = P-256, 1 = P-384; the other arguments Uint8Arrays; TypeError on wrong ones):
 * - verify(curve, point, digest, signature): 1 (the signature verifies), 0 (it does not, or it is
 *   malformed) or -1 (the point is not a public key on that curve);
 * - checkPoint(curve, point): 1 (a public key on that curve) or -1.
 * Synchronous, allocation-free on the JS side; state is per environment (worker threads each
 * get their own), so calls never race.
 */
#define NAPI_VERSION 8
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <node_api.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <stdlib.h>

typedef struct {
  EC_KEY *key[2];
  EC_POINT *point[2];
} curves_t;

static const int CURVE_NID[2] = {NID_X9_62_prime256v1, NID_secp384r1};
static const size_t POINT_LEN[2] = {65, 97};

static void free_curves(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  curves_t *c = (curves_t *)data;
  for (int i = 0; i < 2; i++) {
    if (c->point[i]) EC_POINT_free(c->point[i]);
    if (c->key[i]) EC_KEY_free(c->key[i]);
  }
  free(c);
}

static int bytes_of(napi_env env, napi_value v, unsigned char **data, size_t *len) {
  bool is_typed = false;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  size_t length;
  void *base;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, &length, &base, &buffer, &offset) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = (unsigned char *)base;
  *len = length;
  return 1;
}

static napi_value result(napi_env env, int value) {
  napi_value out;
  napi_create_int32(env, value, &out);
  return out;
}

/* Loads `point` into the curve's EC_KEY; 1 on success, 0 if it is not a public key on that curve. */
static int load_point(curves_t *c, uint32_t curve, const unsigned char *point, size_t point_len) {
  if (point_len != POINT_LEN[curve] || point[0] != 0x04) return 0;
  const EC_GROUP *group = EC_KEY_get0_group(c->key[curve]);
  ERR_set_mark();
  int ok = EC_POINT_oct2point(group, c->point[curve], point, point_len, NULL) == 1 &&
           !EC_POINT_is_at_infinity(group, c->point[curve]) &&
           EC_KEY_set_public_key(c->key[curve], c->point[curve]) == 1;
  ERR_pop_to_mark(); /* drop only the errors raised here: Node shares the thread's error queue */
  return ok;
}

/* Reads the curve number and the first `n - 1` byte arguments after it; 0 after throwing. */
static int read_args(napi_env env, napi_callback_info info, size_t n, uint32_t *curve, unsigned char **bytes, size_t *lens, curves_t **c) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != n) {
    napi_throw_type_error(env, NULL, n == 4 ? "verify(curve, point, digest, signature) takes 4 arguments" : "checkPoint(curve, point) takes 2 arguments");
    return 0;
  }
  double curve_number = -1;
  if (napi_get_value_double(env, argv[0], &curve_number) != napi_ok || !(curve_number == 0 || curve_number == 1)) {
    napi_throw_type_error(env, NULL, "curve must be 0 (P-256) or 1 (P-384)");
    return 0;
  }
  *curve = (uint32_t)curve_number;
  for (size_t i = 1; i < n; i++) {
    if (!bytes_of(env, argv[i], &bytes[i - 1], &lens[i - 1])) {
      napi_throw_type_error(env, NULL, "point, digest and signature must be Uint8Arrays");
      return 0;
    }
  }
  if (napi_get_instance_data(env, (void **)c) != napi_ok || *c == NULL) {
    napi_throw_error(env, NULL, "skiff_ecdsa: not initialised");
    return 0;
  }
  return 1;
}

static napi_value check_point(napi_env env, napi_callback_info info) {
  uint32_t curve;
  unsigned char *bytes[1];
  size_t lens[1];
  curves_t *c;
  if (!read_args(env, info, 2, &curve, bytes, lens, &c)) return NULL;
  return result(env, load_point(c, curve, bytes[0], lens[0]) ? 1 : -1);
}

static napi_value verify(napi_env env, napi_callback_info info) {
  uint32_t curve;
  unsigned char *bytes[3];
  size_t lens[3];
  curves_t *c;
  if (!read_args(env, info, 4, &curve, bytes, lens, &c)) return NULL;
  if (!load_point(c, curve, bytes[0], lens[0])) return result(env, -1);
  if (lens[2] == 0 || lens[2] > 2147483647 || lens[1] == 0 || lens[1] > 64) return result(env, 0);
  ERR_set_mark();
  int ok = ECDSA_verify(0, bytes[1], (int)lens[1], bytes[2], (int)lens[2], c->key[curve]);
  ERR_pop_to_mark();
  return result(env, ok == 1 ? 1 : 0);
}

NAPI_MODULE_INIT() {
  curves_t *c = (curves_t *)calloc(1, sizeof(curves_t));
  if (c == NULL) {
    napi_throw_error(env, NULL, "skiff_ecdsa: out of memory");
    return NULL;
  }
  ERR_set_mark();
  for (int i = 0; i < 2; i++) {
    c->key[i] = EC_KEY_new_by_curve_name(CURVE_NID[i]);
    c->point[i] = c->key[i] ? EC_POINT_new(EC_KEY_get0_group(c->key[i])) : NULL;
  }
  ERR_pop_to_mark();
  for (int i = 0; i < 2; i++) {
    if (c->point[i] == NULL) {
      free_curves(env, c, NULL);
      napi_throw_error(env, NULL, "skiff_ecdsa: OpenSSL has no P-256/P-384 group");
      return NULL;
    }
  }
  if (napi_set_instance_data(env, c, free_curves, NULL) != napi_ok) {
    free_curves(env, c, NULL);
    return NULL;
  }
  napi_value fn;
  if (napi_create_function(env, "verify", NAPI_AUTO_LENGTH, verify, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "verify", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "checkPoint", NAPI_AUTO_LENGTH, check_point, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "checkPoint", fn) != napi_ok) return NULL;
  return exports;
}
