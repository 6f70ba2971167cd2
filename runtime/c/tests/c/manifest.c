/* An app loaded from a manifest, then changed while it serves: a reload from another
 * manifest, a rollback, an upgrade declared in code, an upgrade refused because it widens a
 * grant (then accepted), a reload of the manifest it was loaded from; the status after
 * each. And manifests that do not load: several problems in one error, a missing file.
 *
 * usage: manifest <dir with good.toml, next.toml, bad.toml> <greet_v2.wasm> <cache-dir> */
#include "check.h"

#define HELLO "acme:greet/api@1.0.0#hello"

static char path_buf[4096];

static const char *path(const char *dir, const char *file) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", dir, file);
    return path_buf;
}

/* Checks which version answers. */
static void answers(const membrane_app_t *app, const char *version) {
    const char *args[1] = {"\"c\""};
    char *result = NULL;
    OK(membrane_app_call(app, "greet", HELLO, args, 1, &result, error_out));
    char expected[64];
    snprintf(expected, sizeof expected, "\"%s hello c\"", version);
    if (!same(result, expected)) {
        fprintf(stderr, "expected %s, got %s\n", expected, result);
        _Exit(1);
    }
    membrane_string_free(result);
}

/* Checks the module's status contains `part`. */
static void status_has(const membrane_app_t *app, const char *part) {
    char *status = NULL;
    OK((status = membrane_app_status(app, "greet", error_out)) != NULL);
    if (!contains(status, part)) {
        fprintf(stderr, "status without %s: %s\n", part, status);
        _Exit(1);
    }
    membrane_string_free(status);
}

static void bad_manifests(membrane_runtime_t *rt, const char *dir) {
    membrane_error_t *err = NULL;
    CHECK(membrane_runtime_load(rt, path(dir, "bad.toml"), &err) == NULL);
    CHECK(same(membrane_error_kind(err), "manifest"));
    size_t n = membrane_error_problem_count(err);
    CHECK(n >= 2);
    int memory_key = 0;
    for (size_t i = 0; i < n; i++) {
        const membrane_error_t *p = membrane_error_problem(err, i);
        CHECK(p != NULL);
        CHECK(membrane_error_kind(p) != NULL);
        CHECK(same(membrane_error_message(p), membrane_error_problem_message(err, i)));
        if (same(membrane_error_key(p), "modules.a.limits.memory")) {
            memory_key = 1;
            CHECK(contains(membrane_error_file(p), "bad.toml"));
            CHECK(membrane_error_line(p) > 0);
        }
    }
    CHECK(memory_key);
    CHECK(membrane_error_problem(err, n) == NULL);
    CHECK(membrane_error_problem_message(err, n) == NULL);
    membrane_error_free(err);

    err = NULL;
    CHECK(membrane_runtime_load(rt, path(dir, "missing.toml"), &err) == NULL);
    CHECK(contains(membrane_error_message(err), "missing.toml"));
    membrane_error_free(err);
}

int main(int argc, char **argv) {
    CHECK(argc == 4);
    const char *dir = argv[1];
    membrane_runtime_t *rt = test_runtime(argv[3]);

    membrane_app_t *app = NULL;
    OK((app = membrane_runtime_load(rt, path(dir, "good.toml"), error_out)) != NULL);
    answers(app, "v1");
    status_has(app, "\"generation\":1");
    status_has(app, "\"timeout_ms\":2000.0");

    /* A reload from another manifest: the module's component changed. */
    char *report = NULL;
    OK(membrane_app_reload(app, path(dir, "next.toml"), false, &report, error_out));
    CHECK(contains(report, "\"upgraded\":[{"));
    CHECK(contains(report, "\"to\":2"));
    membrane_string_free(report);
    answers(app, "v2");
    status_has(app, "\"state\":\"probation\"");

    /* Back to the generation kept during the probation. */
    OK(membrane_app_rollback(app, "greet", &report, error_out));
    CHECK(contains(report, "\"module\":\"greet\""));
    membrane_string_free(report);
    answers(app, "v1");
    status_has(app, "rolled back");

    /* An upgrade declared in code, with the manifest's limits. */
    membrane_spec_t *spec = membrane_spec_new();
    OK(membrane_spec_module(spec, "greet", argv[2], error_out));
    OK(membrane_spec_timeout_ms(spec, "greet", 2000, error_out));
    OK(membrane_app_upgrade(app, spec, "greet", false, &report, error_out));
    CHECK(contains(report, "\"module\":\"greet\""));
    membrane_string_free(report);
    answers(app, "v2");

    /* A wider grant is refused unless accepted; the report lists the change. */
    OK(membrane_spec_env(spec, "greet", "EXTRA", "1", error_out));
    membrane_error_t *err = NULL;
    CHECK(!membrane_app_upgrade(app, spec, "greet", false, NULL, &err));
    CHECK(contains(membrane_error_message(err), "EXTRA"));
    EXPECT_ERROR(err, "denied", "greet", NULL);
    err = NULL;
    OK(membrane_app_upgrade(app, spec, "greet", true, &report, error_out));
    CHECK(contains(report, "\"wider\":true"));
    membrane_string_free(report);
    CHECK(!membrane_app_upgrade(app, spec, "nobody", false, NULL, &err));
    EXPECT_ERROR(err, "not-found", "nobody", NULL);
    err = NULL;
    membrane_spec_free(spec);

    /* A reload of the manifest it was loaded from: v1 again, without the variable. */
    OK(membrane_app_reload(app, NULL, false, NULL, error_out));
    answers(app, "v1");

    bad_manifests(rt, dir);
    membrane_runtime_free(rt);
    membrane_app_free(app);
    printf("manifest: ok\n");
    return 0;
}
