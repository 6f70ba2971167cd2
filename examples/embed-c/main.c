/* Embedding Membrane in a C program: the Rust text plugin of examples/plugins, declared in
 * code with the grants and limits of examples/plugins/membrane.toml (one environment
 * variable, 64 MiB), called with arguments and results as WAVE text. See README.md for
 * how to build and run it.
 *
 * usage: embed-c [plugin_rust.wasm] ["some text"] */
#include <stdio.h>
#include <string.h>

#include "membrane.h"

#define TEXT "membrane-examples:plugin/text@0.1.0#"

/* Prints an error's kind and message (which names the module), then frees it. A program
 * can also branch on the kind ("timeout", "memory-limit", ...) and read the module,
 * export and manifest key on their own (membrane_error_module ...). */
static void report(const char *what, membrane_error_t *err) {
    fprintf(stderr, "%s failed: [%s] %s\n", what, membrane_error_kind(err),
            membrane_error_message(err));
    /* A load that found several problems lists each. */
    size_t problems = membrane_error_problem_count(err);
    for (size_t i = 0; problems > 1 && i < problems; i++)
        fprintf(stderr, "  - %s\n", membrane_error_problem_message(err, i));
    membrane_error_free(err);
}

/* Calls one function of the plugin with at most one WAVE argument and prints the result. */
static int call(const membrane_app_t *app, const char *func, const char *arg) {
    char export_name[128];
    snprintf(export_name, sizeof export_name, "%s%s", TEXT, func);
    const char *args[1] = {arg};
    char *result = NULL;
    membrane_error_t *err = NULL;
    if (!membrane_app_call(app, "rust", export_name, args, arg ? 1 : 0, &result, &err)) {
        report(func, err);
        return 0;
    }
    printf("%s: %s\n", func, result ? result : "(no result)");
    membrane_string_free(result);
    return 1;
}

int main(int argc, char **argv) {
    const char *plugin =
        argc > 1 ? argv[1] : "guests/target/wasm32-wasip2/release/plugin_rust.wasm";
    /* The input as a WAVE string (no quotes or backslashes in it, for brevity). */
    char input[256];
    snprintf(input, sizeof input, "\"%s\"", argc > 2 ? argv[2] : "hello world");

    membrane_error_t *err = NULL;
    membrane_config_t *config = membrane_config_new();
    /* Compiled code is kept where the `membrane` command keeps it: later runs start fast. */
    if (!membrane_config_default_cache(config, &err)) {
        report("cache", err);
        err = NULL;
    }
    membrane_runtime_t *runtime = membrane_runtime_new(config, &err);
    membrane_config_free(config);
    if (!runtime) {
        report("runtime", err);
        return 1;
    }

    /* The plugin's grants and limits: one environment variable, 64 MiB; no files, no
     * network. The timeout is short here so that `spin` below ends quickly. */
    membrane_spec_t *spec = membrane_spec_new();
    int ok = membrane_spec_module(spec, "rust", plugin, &err) &&
             membrane_spec_env(spec, "rust", "PLUGIN_GREETING", "hello from C", &err) &&
             membrane_spec_memory(spec, "rust", 64u << 20, &err) &&
             membrane_spec_timeout_ms(spec, "rust", 250, &err);
    membrane_app_t *app = ok ? membrane_runtime_load_spec(runtime, spec, &err) : NULL;
    membrane_spec_free(spec);
    membrane_runtime_free(runtime); /* the app keeps what it needs */
    if (!app) {
        report("load", err);
        return 1;
    }

    int status = call(app, "name", NULL) && call(app, "transform", input) &&
                 call(app, "stats", input) && call(app, "env", "\"PLUGIN_GREETING\"") &&
                 call(app, "env", "\"HOME\"");
    /* A call that never returns ends at the module's timeout, as an error. */
    if (membrane_app_call(app, "rust", TEXT "spin", NULL, 0, NULL, &err)) {
        fprintf(stderr, "spin returned\n");
        status = 0;
    } else {
        printf("spin: stopped (%s)\n", membrane_error_kind(err));
        membrane_error_free(err);
    }
    membrane_app_free(app);
    return status ? 0 : 1;
}
