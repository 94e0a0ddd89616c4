/* safetensors: round trips, dtype conversion, sharded directories, and a corpus of corrupt
 * and truncated files that must each be a clear error (and never a crash under ASan). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "aha/error.h"
#include "aha/safetensors.h"
#include "policy/st_test_util.h"

static char tmpdir[64];

static int setup(void **state) {
    (void)state;
    return make_temp_dir(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    remove_tree(tmpdir);
    return 0;
}

static void path_in(char *out, const char *name) { snprintf(out, 256, "%s/%s", tmpdir, name); }

/* Writes u64 len + header + data bytes as a raw file. */
static void write_raw(const char *path, const char *header, const void *data, size_t data_len) {
    size_t hlen = strlen(header);
    unsigned char *buf = malloc(8 + hlen + data_len + 1);
    uint64_t n = hlen;
    memcpy(buf, &n, 8);
    memcpy(buf + 8, header, hlen);
    if (data_len) memcpy(buf + 8 + hlen, data, data_len);
    assert_int_equal(write_bytes(path, buf, 8 + hlen + data_len), 0);
    free(buf);
}

static void test_f32_round_trip(void **state) {
    (void)state;
    float a[6] = {1.5f, -2.25f, 3e-20f, 1e30f, -0.0f, 7.0f};
    float b[3] = {0.1f, 0.2f, 0.3f};
    float scalar = 42.0f;
    AhaSafetensorsEntry entries[] = {
        {.name = "a", .dtype = AHA_DTYPE_F32, .ndim = 2, .shape = {2, 3}, .data = a},
        {.name = "scalar", .dtype = AHA_DTYPE_F32, .ndim = 0, .data = &scalar},
        {.name = "empty", .dtype = AHA_DTYPE_F32, .ndim = 2, .shape = {0, 5}, .data = NULL},
        {.name = "b", .dtype = AHA_DTYPE_F32, .ndim = 1, .shape = {3}, .data = b},
    };
    const char *meta[] = {"format", "pt", "note", "héllo", NULL};
    char path[256];
    path_in(path, "rt.safetensors");
    assert_int_equal(aha_safetensors_write(path, entries, 4, meta), 0);

    size_t size;
    unsigned char *raw = read_bytes(path, &size);
    uint64_t header_len;
    memcpy(&header_len, raw, 8);
    assert_int_equal(header_len % 8, 0);
    assert_int_equal(size, 8 + header_len + sizeof a + sizeof b + sizeof scalar);
    free(raw);

    AhaSafetensorsFile *f = aha_safetensors_open(path);
    assert_non_null(f);
    assert_int_equal(aha_safetensors_count(f), 4);
    assert_string_equal(aha_safetensors_metadata(f, "format"), "pt");
    assert_string_equal(aha_safetensors_metadata(f, "note"), "héllo");
    assert_null(aha_safetensors_metadata(f, "absent"));
    const AhaSafetensor *t = aha_safetensors_find(f, "a");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->numel, 6);
    float out[6];
    assert_int_equal(aha_safetensor_to_f32(t, out), 0);
    assert_memory_equal(out, a, sizeof a);
    t = aha_safetensors_find(f, "scalar");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    assert_int_equal(aha_safetensor_to_f32(t, out), 0);
    assert_true(out[0] == 42.0f);
    t = aha_safetensors_find(f, "empty");
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->nbytes, 0);
    assert_int_equal(aha_safetensor_to_f32(t, out), 0);
    t = aha_safetensors_find(f, "b");
    assert_int_equal(aha_safetensor_to_f32(t, out), 0);
    assert_memory_equal(out, b, sizeof b);
    aha_safetensor_release(t);
    assert_int_equal(aha_safetensor_to_f32(t, out), 0); /* released pages read back */
    assert_memory_equal(out, b, sizeof b);
    assert_null(aha_safetensors_find(f, "missing"));
    aha_safetensors_close(f);
}

static void test_bf16_rounding(void **state) {
    (void)state;
    /* 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties go to the even 1.0. */
    assert_int_equal(aha_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    /* 1 + 3*2^-8 is halfway between 1.0078125 (odd) and 1.015625 (even): rounds up. */
    assert_int_equal(aha_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    assert_int_equal(aha_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    assert_int_equal(aha_f32_to_bf16(-2.0f), 0xc000);
    assert_int_equal(aha_f32_to_bf16(INFINITY), 0x7f80);
    assert_true(isnan(aha_bf16_to_f32(aha_f32_to_bf16(NAN))));
    /* The largest float rounds to infinity, as torch does. */
    assert_int_equal(aha_f32_to_bf16(3.4028235e38f), 0x7f80);

    float values[5] = {1.0f + 0x1p-8f, 3.14159265f, -1e-3f, 65504.0f, 0.0f};
    AhaSafetensorsEntry e = {.name = "w", .dtype = AHA_DTYPE_BF16, .ndim = 1, .shape = {5},
                             .data = values};
    char path[256];
    path_in(path, "bf16.safetensors");
    assert_int_equal(aha_safetensors_write(path, &e, 1, NULL), 0);
    AhaSafetensorsFile *f = aha_safetensors_open(path);
    assert_non_null(f);
    const AhaSafetensor *t = aha_safetensors_tensor(f, 0);
    assert_int_equal(t->dtype, AHA_DTYPE_BF16);
    assert_int_equal(t->nbytes, 10);
    float out[5];
    assert_int_equal(aha_safetensor_to_f32(t, out), 0);
    for (int i = 0; i < 5; i++) {
        assert_true(out[i] == aha_bf16_to_f32(aha_f32_to_bf16(values[i])));
        assert_true(fabsf(out[i] - values[i]) <= fabsf(values[i]) * 0x1p-8f);
    }
    aha_safetensors_close(f);
}

static void test_f16_and_unsupported_dtypes(void **state) {
    (void)state;
    /* 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), +inf, -0.0 */
    uint16_t halves[6] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000};
    int32_t ints[2] = {1, 2};
    unsigned char data[20];
    memcpy(data, halves, 12);
    memcpy(data + 12, ints, 8);
    char path[256];
    path_in(path, "f16.safetensors");
    write_raw(path,
              "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
              "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
              data, sizeof data);
    AhaSafetensorsFile *f = aha_safetensors_open(path);
    assert_non_null(f);
    float out[6];
    assert_int_equal(aha_safetensor_to_f32(aha_safetensors_find(f, "h"), out), 0);
    assert_true(out[0] == 1.0f && out[1] == -2.0f && out[2] == 65504.0f);
    assert_true(out[3] == 0x1p-24f && isinf(out[4]) && out[5] == 0.0f && signbit(out[5]));
    assert_int_equal(aha_safetensor_to_f32(aha_safetensors_find(f, "i"), out), -1);
    assert_non_null(strstr(aha_error_message(), "tensor 'i' has dtype I32"));
    aha_safetensors_close(f);
    assert_int_equal(aha_f16_to_f32(0x3555) == 0.333251953125f, 1);
}

/* A corrupt file: its header (and data length) and a phrase the error must contain. */
typedef struct {
    const char *header;
    size_t data_len;
    const char *expect;
} Corrupt;

static const Corrupt corpus[] = {
    {"[1,2]", 0, "does not start with '{'"},
    {" {}", 0, "does not start with '{'"},
    {"{\"a\":", 0, "header JSON"},
    {"{\"a\":1} trailing", 0, "header JSON"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "header, column 57: tensor 'a' is listed twice"},
    {"{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8],\"dtype\":\"F16\"}}", 8,
     "tensor 'a': the key 'dtype' appears twice"},
    {"{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'F33'"},
    {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a': missing or non-string \"dtype\""},
    {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "non-array \"shape\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape[0] is not a non-negative"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "shape[0] is not a non-negative"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
     "overflows"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
     "9 dimensions"},
    {"{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, "do not fill whole bytes"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "begin <= end"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
     "hold 4 bytes but shape x F32 needs 8"},
    {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "a hole"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensors overlap"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "a hole"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12,
     "cover 4 bytes of data but the file holds 12"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
     "cover 8 bytes of data but the file holds 4"},
    {"{\"__metadata__\":{\"format\":1}}", 0, "__metadata__[\"format\"] is not a string"},
    {"{\"__metadata__\":[\"pt\"]}", 0, "__metadata__ is not an object"},
    {"{\"a\":[0,4]}", 4, "tensor 'a': expected an object"},
};

static void test_corrupt_corpus(void **state) {
    (void)state;
    char path[256];
    path_in(path, "corrupt.safetensors");
    unsigned char zeros[16] = {0};
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        write_raw(path, corpus[i].header, zeros, corpus[i].data_len);
        aha_error_clear();
        AhaSafetensorsFile *f = aha_safetensors_open(path);
        if (f || !strstr(aha_error_message(), corpus[i].expect) ||
            !strstr(aha_error_message(), path)) {
            fail_msg("case %zu (%s): expected an error containing '%s', got %s", i,
                     corpus[i].header, corpus[i].expect, f ? "success" : aha_error_message());
        }
    }
    /* Header lengths: over the limit, past the end of the file, and a file under 8 bytes. */
    uint64_t huge = AHA_SAFETENSORS_MAX_HEADER + 1;
    unsigned char buf[16] = {0};
    memcpy(buf, &huge, 8);
    memcpy(buf + 8, "{}      ", 8);
    assert_int_equal(write_bytes(path, buf, 16), 0);
    assert_null(aha_safetensors_open(path));
    assert_non_null(strstr(aha_error_message(), "exceeds the limit"));
    uint64_t past = 9;
    memcpy(buf, &past, 8);
    assert_int_equal(write_bytes(path, buf, 16), 0);
    assert_null(aha_safetensors_open(path));
    assert_non_null(strstr(aha_error_message(), "runs past the end"));
    assert_int_equal(write_bytes(path, buf, 5), 0);
    assert_null(aha_safetensors_open(path));
    assert_non_null(strstr(aha_error_message(), "too short"));
    path_in(path, "does-not-exist.safetensors");
    assert_null(aha_safetensors_open(path));
    assert_non_null(strstr(aha_error_message(), "No such file"));
}

/* Every truncation of a valid file fails cleanly; random byte flips never crash. */
static void test_truncations_and_flips(void **state) {
    (void)state;
    float w[12];
    for (int i = 0; i < 12; i++) w[i] = (float)i;
    AhaSafetensorsEntry entries[] = {
        {.name = "x", .dtype = AHA_DTYPE_BF16, .ndim = 2, .shape = {3, 2}, .data = w},
        {.name = "y", .dtype = AHA_DTYPE_F32, .ndim = 1, .shape = {6}, .data = w + 6},
    };
    char good[256], bad[256];
    path_in(good, "good.safetensors");
    path_in(bad, "bad.safetensors");
    assert_int_equal(aha_safetensors_write(good, entries, 2, NULL), 0);
    size_t size;
    unsigned char *raw = read_bytes(good, &size);
    for (size_t len = 0; len < size; len++) {
        assert_int_equal(write_bytes(bad, raw, len), 0);
        AhaSafetensorsFile *f = aha_safetensors_open(bad);
        if (f) fail_msg("a file truncated to %zu of %zu bytes was accepted", len, size);
    }
    unsigned seed = 12345;
    unsigned char *copy = malloc(size);
    for (int trial = 0; trial < 400; trial++) {
        memcpy(copy, raw, size);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % size;
            seed = seed * 1103515245u + 12345u;
            copy[at] = (unsigned char)(seed >> 16);
        }
        assert_int_equal(write_bytes(bad, copy, size), 0);
        AhaSafetensorsFile *f = aha_safetensors_open(bad);
        if (f) {
            float out[6];
            for (size_t i = 0; i < aha_safetensors_count(f); i++) {
                const AhaSafetensor *t = aha_safetensors_tensor(f, i);
                if (t->numel <= 6) aha_safetensor_to_f32(t, out);
            }
            aha_safetensors_close(f);
        } else {
            assert_true(strlen(aha_error_message()) > 0);
        }
    }
    free(copy);
    free(raw);
}

static void write_index(const char *dir, const char *json) {
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    assert_int_equal(write_bytes(path, json, strlen(json)), 0);
}

static void test_sharded_directory(void **state) {
    (void)state;
    char dir[256], path[512];
    path_in(dir, "sharded");
    assert_int_equal(mkdir(dir, 0755), 0);
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6}, c[3] = {7, 8, 9};
    AhaSafetensorsEntry first[] = {
        {.name = "model.a", .dtype = AHA_DTYPE_F32, .ndim = 2, .shape = {2, 2}, .data = a},
        {.name = "model.b", .dtype = AHA_DTYPE_BF16, .ndim = 1, .shape = {2}, .data = b},
    };
    AhaSafetensorsEntry second[] = {
        {.name = "model.c", .dtype = AHA_DTYPE_F32, .ndim = 1, .shape = {3}, .data = c},
    };
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
    assert_int_equal(aha_safetensors_write(path, first, 2, NULL), 0);
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    assert_int_equal(aha_safetensors_write(path, second, 1, NULL), 0);

    /* No index and no model.safetensors. */
    assert_null(aha_safetensors_open_dir(dir));
    assert_non_null(strstr(aha_error_message(), "no model.safetensors"));

    write_index(dir, "{\"metadata\":{\"total_size\":32},\"weight_map\":{"
                     "\"model.c\":\"model-00002-of-00002.safetensors\","
                     "\"model.a\":\"model-00001-of-00002.safetensors\","
                     "\"model.b\":\"model-00001-of-00002.safetensors\"}}");
    AhaSafetensorsSet *set = aha_safetensors_open_dir(dir);
    assert_non_null(set);
    assert_int_equal(aha_safetensors_set_count(set), 3);
    assert_int_equal(aha_safetensors_set_files(set), 2);
    assert_string_equal(aha_safetensors_set_tensor(set, 0)->name, "model.a");
    float out[4];
    assert_int_equal(aha_safetensor_to_f32(aha_safetensors_set_find(set, "model.c"), out), 0);
    assert_true(out[0] == 7 && out[2] == 9);
    assert_int_equal(aha_safetensor_to_f32(aha_safetensors_set_find(set, "model.b"), out), 0);
    assert_true(out[0] == 5 && out[1] == 6);
    assert_null(aha_safetensors_set_find(set, "model.d"));
    aha_safetensors_set_close(set);

    struct {
        const char *index, *expect;
    } bad[] = {
        {"{\"weight_map\":{\"model.a\":\"model-00001-of-00002.safetensors\"}}",
         "tensor 'model.b' of model-00001-of-00002.safetensors is not listed for that file"},
        {"{\"weight_map\":{\"model.a\":\"model-00002-of-00002.safetensors\"}}",
         "'model.a' is listed in model-00002-of-00002.safetensors but that file does not hold it"},
        {"{\"weight_map\":{\"model.a\":\"../model-00001-of-00002.safetensors\"}}",
         "not a file name in the directory"},
        {"{\"weight_map\":{\"model.a\":\"missing.safetensors\"}}", "missing.safetensors: opening it"},
        {"{\"weight_map\":[]}", "expected a non-empty object \"weight_map\""},
        {"{\"weight_map\":", "model.safetensors.index.json:1:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_index(dir, bad[i].index);
        aha_error_clear();
        set = aha_safetensors_open_dir(dir);
        if (set || !strstr(aha_error_message(), bad[i].expect)) {
            fail_msg("index case %zu: expected '%s', got %s", i, bad[i].expect,
                     set ? "success" : aha_error_message());
        }
    }
}

static void test_write_errors_leave_nothing(void **state) {
    (void)state;
    char dir[256], path[512];
    path_in(dir, "writes");
    assert_int_equal(mkdir(dir, 0755), 0);
    float v[2] = {1, 2};
    snprintf(path, sizeof path, "%s/out.safetensors", dir);

    AhaSafetensorsEntry wrong_dtype = {.name = "v", .dtype = AHA_DTYPE_F16, .ndim = 1,
                                       .shape = {2}, .data = v};
    assert_int_equal(aha_safetensors_write(path, &wrong_dtype, 1, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "can only write F32 or BF16, not F16"));
    AhaSafetensorsEntry twice[2] = {
        {.name = "v", .dtype = AHA_DTYPE_F32, .ndim = 1, .shape = {2}, .data = v},
        {.name = "v", .dtype = AHA_DTYPE_F32, .ndim = 1, .shape = {2}, .data = v},
    };
    assert_int_equal(aha_safetensors_write(path, twice, 2, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "'v' is given twice"));
    AhaSafetensorsPart parts[2] = {{v, 1}, {v, 2}};
    AhaSafetensorsEntry bad_parts = {.name = "p", .dtype = AHA_DTYPE_F32, .ndim = 1,
                                     .shape = {2}, .parts = parts, .n_parts = 2};
    assert_int_equal(aha_safetensors_write(path, &bad_parts, 1, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "parts hold 3 elements, the shape 2"));
    assert_int_equal(count_dir_entries(dir), 0);

    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", dir);
    assert_int_equal(aha_safetensors_write(nodir, twice, 1, NULL), -1);
    assert_non_null(strstr(aha_error_message(), "writing"));

    /* Parts concatenate; overwriting replaces the file atomically. */
    bad_parts.shape[0] = 3;
    assert_int_equal(aha_safetensors_write(path, &bad_parts, 1, NULL), 0);
    assert_int_equal(aha_safetensors_write(path, twice, 1, NULL), 0);
    assert_int_equal(count_dir_entries(dir), 1);
    AhaSafetensorsFile *f = aha_safetensors_open(path);
    assert_non_null(f);
    assert_int_equal(aha_safetensors_count(f), 1);
    assert_int_equal(aha_safetensors_tensor(f, 0)->numel, 2);
    aha_safetensors_close(f);
}

static void test_parts_concatenate(void **state) {
    (void)state;
    float g0[2] = {1, 2}, u0[2] = {3, 4}, g1[2] = {5, 6}, u1[2] = {7, 8};
    AhaSafetensorsPart parts[4] = {{g0, 2}, {u0, 2}, {g1, 2}, {u1, 2}};
    AhaSafetensorsEntry fused = {.name = "gate_up", .dtype = AHA_DTYPE_F32, .ndim = 3,
                                 .shape = {2, 2, 2}, .parts = parts, .n_parts = 4};
    char path[256];
    path_in(path, "parts.safetensors");
    assert_int_equal(aha_safetensors_write(path, &fused, 1, NULL), 0);
    AhaSafetensorsFile *f = aha_safetensors_open(path);
    assert_non_null(f);
    float out[8];
    assert_int_equal(aha_safetensor_to_f32(aha_safetensors_tensor(f, 0), out), 0);
    for (int i = 0; i < 8; i++) assert_true(out[i] == (float)(i + 1));
    aha_safetensors_close(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_round_trip),
        cmocka_unit_test(test_bf16_rounding),
        cmocka_unit_test(test_f16_and_unsupported_dtypes),
        cmocka_unit_test(test_corrupt_corpus),
        cmocka_unit_test(test_truncations_and_flips),
        cmocka_unit_test(test_sharded_directory),
        cmocka_unit_test(test_write_errors_leave_nothing),
        cmocka_unit_test(test_parts_concatenate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
