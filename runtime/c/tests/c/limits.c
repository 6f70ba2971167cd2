/* Limits seen from C: a guest that loops forever stops at its timeout, one that allocates
 * without end at its memory limit, one past its fuel with "out-of-fuel"; each module
 * answers the next call; a memory limit below the component's initial memory is refused
 * at load.
 *
 * usage: limits <probe.wasm> <cache-dir> */
/* clock_gettime and pthreads under -std=c99. */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "check.h"

#define CAPS "membrane-test:probe/caps@0.1.0#"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The module still answers: `sum` of a list. */
static void answers(const membrane_app_t *app, const char *module) {
    const char *args[1] = {"[20, 22]"};
    char *result = NULL;
    OK(membrane_app_call(app, module, CAPS "sum", args, 1, &result, error_out));
    CHECK(same(result, "42"));
    membrane_string_free(result);
}

int main(int argc, char **argv) {
    CHECK(argc == 3);
    membrane_config_t *config = membrane_config_new();
    OK(membrane_config_cache_dir(config, argv[2], error_out));
    OK(membrane_config_instance_slots(config, 16, error_out));
    OK(membrane_config_fuel(config, true, error_out));
    membrane_runtime_t *rt = NULL;
    OK((rt = membrane_runtime_new(config, error_out)) != NULL);
    membrane_config_free(config);

    membrane_spec_t *spec = membrane_spec_new();
    OK(membrane_spec_module(spec, "slow", argv[1], error_out));
    OK(membrane_spec_timeout_ms(spec, "slow", 100, error_out));
    OK(membrane_spec_module(spec, "small", argv[1], error_out));
    OK(membrane_spec_memory(spec, "small", 16u << 20, error_out));
    OK(membrane_spec_module(spec, "metered", argv[1], error_out));
    OK(membrane_spec_fuel(spec, "metered", 1000000, error_out));
    membrane_app_t *app = NULL;
    OK((app = membrane_runtime_load_spec(rt, spec, error_out)) != NULL);

    membrane_error_t *err = NULL;
    double start = now_s();
    CHECK(!membrane_app_call(app, "slow", CAPS "spin", NULL, 0, NULL, &err));
    CHECK(now_s() - start < 5.0);
    CHECK(contains(membrane_error_message(err), "slow"));
    EXPECT_ERROR(err, "timeout", "slow", CAPS "spin");
    err = NULL;
    answers(app, "slow");

    CHECK(!membrane_app_call(app, "small", CAPS "bomb", NULL, 0, NULL, &err));
    EXPECT_ERROR(err, "memory-limit", "small", NULL);
    err = NULL;
    answers(app, "small");

    CHECK(!membrane_app_call(app, "metered", CAPS "spin", NULL, 0, NULL, &err));
    EXPECT_ERROR(err, "out-of-fuel", "metered", NULL);
    err = NULL;
    answers(app, "metered");
    membrane_app_free(app);

    /* 64 KiB is below the probe's initial memory: refused at load, naming the key. */
    OK(membrane_spec_memory(spec, "small", 64u << 10, error_out));
    CHECK(membrane_runtime_load_spec(rt, spec, &err) == NULL);
    CHECK(err != NULL);
    CHECK(contains(membrane_error_message(err), "small"));
    EXPECT_ERROR(err, "memory-limit", NULL, NULL);

    membrane_spec_free(spec);
    membrane_runtime_free(rt);
    printf("limits: ok\n");
    return 0;
}
