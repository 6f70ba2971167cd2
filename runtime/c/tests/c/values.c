/* Calls with WAVE text and with the binary value form on the `types` guest (an echo of
 * every WIT value family), declared in code, and the errors of calls: an export or module
 * that does not exist, WAVE or bytes that are not the parameters' values, NULL and
 * non-UTF-8 strings. Then the status, and everything freed.
 *
 * usage: values <types.wasm> <cache-dir> */
#include "check.h"

#define ECHO "membrane-test:types/echo@0.1.0#"

/* Calls `func` of the echo interface with one WAVE argument; returns the result. */
static char *call1(const membrane_app_t *app, const char *func, const char *arg) {
    char export_name[128];
    snprintf(export_name, sizeof export_name, "%s%s", ECHO, func);
    const char *args[1] = {arg};
    char *result = NULL;
    OK(membrane_app_call(app, "types", export_name, args, 1, &result, error_out));
    return result;
}

/* Checks that `func` answers `arg` with `expected`. */
static void expect_wave(const membrane_app_t *app, const char *func, const char *arg,
                        const char *expected) {
    char *got = call1(app, func, arg);
    if (!same(got, expected)) {
        fprintf(stderr, "%s(%s): expected %s, got %s\n", func, arg, expected, got);
        _Exit(1);
    }
    membrane_string_free(got);
}

/* Calls `func` with `args` in the binary form; checks the results are `expected`. */
static void expect_binary(const membrane_app_t *app, const char *func, const uint8_t *args,
                          size_t args_len, const uint8_t *expected, size_t expected_len) {
    char export_name[128];
    snprintf(export_name, sizeof export_name, "%s%s", ECHO, func);
    uint8_t *results = NULL;
    size_t results_len = 0;
    OK(membrane_app_call_binary(app, "types", export_name, args, args_len, &results,
                                &results_len, error_out));
    if (results_len != expected_len ||
        (expected_len > 0 && memcmp(results, expected, expected_len) != 0)) {
        fprintf(stderr, "%s: unexpected results (%zu bytes):", func, results_len);
        for (size_t i = 0; i < results_len; i++) fprintf(stderr, " %02x", results[i]);
        fprintf(stderr, "\n");
        _Exit(1);
    }
    membrane_bytes_free(results);
}

static void wave_calls(const membrane_app_t *app) {
    /* A record, a list, a string, an option, a result's error, a variant, flags. */
    /* echo-point adds 1 to x and y. */
    expect_wave(app, "echo-point", "{x: 1, y: -2, label: \"hi\"}", "{x: 2, y: -1, label: \"hi\"}");
    expect_wave(app, "sum", "[1, 2, 3, -10]", "-4");
    expect_wave(app, "echo-string", "\"h\\u{e9}llo \\\"w\\\"\"", "\"h\xc3\xa9llo \\\"w\\\"\"");
    expect_wave(app, "swap", "(\"a\", 7)", "(7, \"a\")");
    expect_wave(app, "next-color", "blue", "red");
    expect_wave(app, "parse-u32", "\"12\"", "ok(12)");
    char *err = call1(app, "parse-u32", "\"twelve\"");
    CHECK(contains(err, "err(\""));
    membrane_string_free(err);
    expect_wave(app, "area", "rect((2, 3))", "6");
    expect_wave(app, "toggle-write", "{read}", "{read, write}");
    /* A variant, an option of an option (some(none) is not none) and a bool both ways. */
    expect_wave(app, "mirror-shape", "rect((2, 3))", "rect((3, 2))");
    expect_wave(app, "maybe", "some(some(4))", "some(some(5))");
    expect_wave(app, "maybe", "some(none)", "some(none)");
    expect_wave(app, "maybe", "none", "none");
    expect_wave(app, "invert", "true", "false");

    /* Two arguments, and a root-level export called by its bare name. */
    const char *find_args[2] = {"[\"a\", \"b\"]", "\"b\""};
    char *found = NULL;
    OK(membrane_app_call(app, "types", ECHO "find", find_args, 2, &found, error_out));
    CHECK_SAME(found, "some(1)");
    membrane_string_free(found);
    const char *name[1] = {"\"c\""};
    char *hello = NULL;
    OK(membrane_app_call(app, "types", "hello", name, 1, &hello, error_out));
    CHECK(contains(hello, "c"));
    membrane_string_free(hello);

    /* No result: NULL. No arguments: `args` may be NULL. The result may be ignored. */
    char *nothing = (char *)"unset";
    OK(membrane_app_call(app, "types", ECHO "nothing", NULL, 0, &nothing, error_out));
    CHECK(nothing == NULL);
    OK(membrane_app_call(app, "types", ECHO "nothing", NULL, 0, NULL, error_out));

    char *sig = NULL;
    OK(membrane_app_signature(app, "types", ECHO "echo-point", &sig, error_out));
    /* Types are written out, as host function signatures take them. */
    CHECK_SAME(sig, "func(p: record { x: s32, y: s32, label: string }) -> "
                    "record { x: s32, y: s32, label: string }");
    membrane_string_free(sig);
}

static void binary_calls(const membrane_app_t *app) {
    /* point {x: 1, y: -2, label: "hi"}: s32 as signed LEB128, the string's length first;
     * echo-point answers {x: 2, y: -1, label: "hi"}. */
    const uint8_t point[] = {0x01, 0x7e, 0x02, 'h', 'i'};
    const uint8_t moved[] = {0x02, 0x7f, 0x02, 'h', 'i'};
    expect_binary(app, "echo-point", point, sizeof point, moved, sizeof moved);
    /* list<s64> [1, 2, 300] -> 303 (signed LEB128: 0xaf 0x02). */
    const uint8_t list[] = {0x03, 0x01, 0x02, 0xac, 0x02};
    const uint8_t sum[] = {0xaf, 0x02};
    expect_binary(app, "sum", list, sizeof list, sum, sizeof sum);
    const uint8_t text[] = {0x03, 'a', 'b', 'c'};
    expect_binary(app, "echo-string", text, sizeof text, text, sizeof text);
    /* result<u32, string>: ok(7) is tag 0 then 7; an error is tag 1 then a string. */
    const uint8_t seven[] = {0x01, '7'};
    const uint8_t ok7[] = {0x00, 0x07};
    expect_binary(app, "parse-u32", seven, sizeof seven, ok7, sizeof ok7);
    const uint8_t bad[] = {0x01, 'x'};
    uint8_t *results = NULL;
    size_t results_len = 0;
    OK(membrane_app_call_binary(app, "types", ECHO "parse-u32", bad, sizeof bad, &results,
                                &results_len, error_out));
    CHECK(results_len > 2 && results[0] == 0x01 && results[1] == results_len - 2);
    membrane_bytes_free(results);
    /* No parameters and no result: no bytes either way. */
    results = (uint8_t *)"unset";
    OK(membrane_app_call_binary(app, "types", ECHO "nothing", NULL, 0, &results, &results_len,
                                error_out));
    CHECK(results == NULL && results_len == 0);
}

static void call_errors(const membrane_app_t *app) {
    membrane_error_t *err = NULL;
    const char *one[1] = {"\"x\""};
    char *result = NULL;

    CHECK(!membrane_app_call(app, "types", ECHO "no-such", one, 1, &result, &err));
    /* A single problem: the error itself. */
    CHECK(membrane_error_problem_count(err) == 1 && membrane_error_problem(err, 0) == err);
    CHECK(same(membrane_error_problem_message(err, 0), membrane_error_message(err)));
    CHECK(membrane_error_problem(err, 1) == NULL);
    EXPECT_ERROR(err, "not-found", "types", NULL);
    err = NULL;
    CHECK(!membrane_app_call(app, "nobody", ECHO "echo-string", one, 1, &result, &err));
    EXPECT_ERROR(err, "not-found", "nobody", NULL);
    err = NULL;

    /* WAVE that is not a value of the parameter's type, and the wrong argument count. */
    const char *broken[1] = {"{x: 1"};
    CHECK(!membrane_app_call(app, "types", ECHO "echo-point", broken, 1, &result, &err));
    EXPECT_ERROR(err, "invalid-args", "types", ECHO "echo-point");
    err = NULL;
    CHECK(!membrane_app_call(app, "types", ECHO "echo-point", NULL, 0, &result, &err));
    EXPECT_ERROR(err, "invalid-args", NULL, ECHO "echo-point");
    err = NULL;
    CHECK(result == NULL);

    /* Bytes cut short, bytes left over, a bad tag. */
    const uint8_t cut[] = {0x01, 0x7e, 0x05, 'h'};
    uint8_t *out = NULL;
    size_t out_len = 0;
    CHECK(!membrane_app_call_binary(app, "types", ECHO "echo-point", cut, sizeof cut, &out,
                                    &out_len, &err));
    EXPECT_ERROR(err, "invalid-args", "types", ECHO "echo-point");
    err = NULL;
    const uint8_t extra[] = {0x01, 'a', 0x00};
    CHECK(!membrane_app_call_binary(app, "types", ECHO "echo-string", extra, sizeof extra, &out,
                                    &out_len, &err));
    EXPECT_ERROR(err, "invalid-args", NULL, NULL);
    err = NULL;
    CHECK(out == NULL);

    /* NULL pointers and strings that are not UTF-8 are errors, not crashes. */
    CHECK(!membrane_app_call(NULL, "types", ECHO "nothing", NULL, 0, NULL, &err));
    EXPECT_ERROR(err, "invalid-args", NULL, NULL);
    err = NULL;
    CHECK(!membrane_app_call(app, NULL, ECHO "nothing", NULL, 0, NULL, &err));
    EXPECT_ERROR(err, "invalid-args", NULL, NULL);
    err = NULL;
    CHECK(!membrane_app_call(app, "types", ECHO "nothing", NULL, 2, NULL, &err));
    EXPECT_ERROR(err, "invalid-args", NULL, NULL);
    err = NULL;
    const char *not_utf8[1] = {"\"\xff\""};
    CHECK(!membrane_app_call(app, "types", ECHO "echo-string", not_utf8, 1, NULL, &err));
    EXPECT_ERROR(err, "invalid-args", NULL, NULL);
    err = NULL;
    CHECK(!membrane_app_call_binary(app, "types", ECHO "nothing", NULL, 0, NULL, &out_len, &err));
    EXPECT_ERROR(err, "invalid-args", NULL, NULL);
    err = NULL;
    /* A NULL error out-parameter: the error is dropped. */
    CHECK(!membrane_app_call(app, "types", ECHO "no-such", NULL, 0, NULL, NULL));

    /* Accessors and frees accept NULL. */
    CHECK(membrane_error_kind(NULL) == NULL && membrane_error_message(NULL) == NULL);
    CHECK(membrane_error_problem_count(NULL) == 0 && membrane_error_problem(NULL, 0) == NULL);
    membrane_error_free(NULL);
    membrane_string_free(NULL);
    membrane_bytes_free(NULL);
    membrane_app_free(NULL);
    membrane_runtime_free(NULL);
    membrane_spec_free(NULL);
    membrane_config_free(NULL);
    membrane_interface_free(NULL);
}

static void status(const membrane_app_t *app) {
    char *one = NULL;
    OK((one = membrane_app_status(app, "types", error_out)) != NULL);
    CHECK(contains(one, "\"generation\":1"));
    CHECK(contains(one, "\"circuit\":\"healthy\""));
    CHECK(contains(one, "\"memory_limit\":33554432"));
    membrane_string_free(one);
    char *all = NULL;
    OK((all = membrane_app_status(app, NULL, error_out)) != NULL);
    CHECK(contains(all, "{\"modules\":{\"types\":{"));
    membrane_string_free(all);
    membrane_error_t *err = NULL;
    CHECK(membrane_app_status(app, "nobody", &err) == NULL);
    EXPECT_ERROR(err, "not-found", "nobody", NULL);
}

int main(int argc, char **argv) {
    CHECK(argc == 3);
    CHECK(contains(membrane_version(), "."));
    /* The defaults (1000 instance slots, no cache), and settings refused. */
    membrane_runtime_t *plain = NULL;
    OK((plain = membrane_runtime_new(NULL, error_out)) != NULL);
    membrane_runtime_free(plain);
    membrane_config_t *config = membrane_config_new();
    membrane_error_t *bad = NULL;
    CHECK(!membrane_config_worker_threads(config, 0, &bad));
    EXPECT_ERROR(bad, "invalid-args", NULL, NULL);
    bad = NULL;
    CHECK(!membrane_config_cache_dir(config, NULL, &bad));
    EXPECT_ERROR(bad, "invalid-args", NULL, NULL);
    membrane_config_free(config);

    membrane_runtime_t *rt = test_runtime(argv[2]);

    membrane_spec_t *spec = membrane_spec_new();
    OK(membrane_spec_module(spec, "types", argv[1], error_out));
    OK(membrane_spec_memory(spec, "types", 32u << 20, error_out));
    OK(membrane_spec_timeout_ms(spec, "types", 5000, error_out));
    OK(membrane_spec_env(spec, "types", "MODE", "test", error_out));
    /* A setter on a module the spec does not declare. */
    membrane_error_t *err = NULL;
    CHECK(!membrane_spec_memory(spec, "nobody", 1, &err));
    EXPECT_ERROR(err, "not-found", "nobody", NULL);

    membrane_app_t *app = NULL;
    OK((app = membrane_runtime_load_spec(rt, spec, error_out)) != NULL);
    membrane_spec_free(spec);
    /* The app keeps the runtime alive. */
    membrane_runtime_free(rt);

    wave_calls(app);
    binary_calls(app);
    call_errors(app);
    status(app);

    membrane_app_free(app);
    printf("values: ok\n");
    return 0;
}
