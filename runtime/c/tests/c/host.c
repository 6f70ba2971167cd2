/* Host functions in C: a key-value store (acme:kv/store) that the `notes` guest links to
 * and calls, from several threads at once; a command (`needs_kv`) run against it; a
 * declared signature that is not the importer's (refused at load, naming the module and
 * the function); a callback that sets a result of the wrong type, and one that fails (each
 * fails the guest's call, not the host). The userdata of every function is freed once,
 * when the last app using it is freed.
 *
 * usage: host <notes.wasm> <render.wasm> <needs_kv.wasm> <cache-dir> */
/* clock_gettime and pthreads under -std=c99. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "check.h"

#define KV "acme:kv/store@0.1.0"
#define ADD "acme:notes/api@0.1.0#add"
#define SHOW "acme:notes/api@0.1.0#show"
#define CAPACITY 128

/* The store: shared by its three functions, freed when the last lets go. */
typedef struct {
    pthread_mutex_t lock;
    int refs;
    size_t n;
    char keys[CAPACITY][64];
    char values[CAPACITY][256];
    unsigned long sets;
} store_t;

static int stores_freed = 0;

static store_t *store_new(void) {
    store_t *s = calloc(1, sizeof *s);
    CHECK(s != NULL);
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

static void store_release(void *userdata) {
    store_t *s = userdata;
    pthread_mutex_lock(&s->lock);
    int left = --s->refs;
    pthread_mutex_unlock(&s->lock);
    if (left == 0) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        __atomic_add_fetch(&stores_freed, 1, __ATOMIC_SEQ_CST);
    }
}

/* The index of `key`, or -1. Called with the lock held. */
static int find(const store_t *s, const char *key) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->keys[i], key) == 0) return (int)i;
    return -1;
}

/* A WAVE string argument without its quotes (the keys here need no escapes). */
static int unquote(const char *wave, char *out, size_t size) {
    size_t len = wave ? strlen(wave) : 0;
    if (len < 2 || wave[0] != '"' || wave[len - 1] != '"' || len - 2 >= size) return 0;
    memcpy(out, wave + 1, len - 2);
    out[len - 2] = 0;
    return 1;
}

/* Appends `text` to `out` as a WAVE string. */
static void quote(char *out, size_t size, const char *text) {
    size_t j = strlen(out);
    if (j + 1 < size) out[j++] = '"';
    for (const char *p = text; *p && j + 3 < size; p++) {
        if (*p == '"' || *p == '\\') out[j++] = '\\';
        out[j++] = *p;
    }
    if (j + 1 < size) out[j++] = '"';
    out[j] = 0;
}

/* get: func(key: string) -> option<string>, in WAVE. */
static bool kv_get(void *userdata, membrane_host_call_t *call) {
    store_t *s = userdata;
    char key[64];
    if (membrane_host_call_arg_count(call) != 1 || membrane_host_call_arg(call, 1) != NULL ||
        !unquote(membrane_host_call_arg(call, 0), key, sizeof key)) {
        membrane_host_call_set_error(call, NULL, "bad key");
        return false;
    }
    char result[300] = "";
    pthread_mutex_lock(&s->lock);
    int i = find(s, key);
    if (i < 0) {
        strcpy(result, "none");
    } else {
        strcpy(result, "some(");
        quote(result, sizeof result - 1, s->values[i]);
        strcat(result, ")");
    }
    pthread_mutex_unlock(&s->lock);
    return membrane_host_call_set_result(call, result);
}

/* Reads a string of the binary value form: a u32 LEB128 length, then the bytes. */
static int read_string(const uint8_t **p, const uint8_t *end, char *out, size_t size) {
    uint32_t len = 0;
    int shift = 0;
    while (*p < end) {
        uint8_t b = *(*p)++;
        len |= (uint32_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
    }
    if ((size_t)(end - *p) < len || len >= size) return 0;
    memcpy(out, *p, len);
    out[len] = 0;
    *p += len;
    return 1;
}

/* set: func(key: string, value: string) -> result<_, string>, in the binary form. */
static bool kv_set(void *userdata, membrane_host_call_t *call) {
    store_t *s = userdata;
    const uint8_t *data = NULL;
    size_t len = 0;
    membrane_error_t *err = NULL;
    if (!membrane_host_call_args_binary(call, &data, &len, &err)) {
        membrane_host_call_set_error(call, NULL, membrane_error_message(err));
        membrane_error_free(err);
        return false;
    }
    const uint8_t *p = data, *end = data + len;
    char key[64], value[256];
    if (!read_string(&p, end, key, sizeof key) || !read_string(&p, end, value, sizeof value) ||
        p != end) {
        membrane_host_call_set_error(call, "invalid-args", "bad arguments");
        return false;
    }
    pthread_mutex_lock(&s->lock);
    int i = find(s, key);
    if (i < 0 && s->n < CAPACITY) i = (int)s->n++;
    if (i >= 0) {
        strcpy(s->keys[i], key);
        strcpy(s->values[i], value);
        s->sets++;
    }
    pthread_mutex_unlock(&s->lock);
    if (i < 0) {
        membrane_host_call_set_error(call, "overloaded", "the store is full");
        return false;
    }
    const uint8_t ok[1] = {0x00}; /* ok, with no payload */
    return membrane_host_call_set_result_binary(call, ok, sizeof ok);
}

/* keys: func() -> list<string>, in WAVE. */
static bool kv_keys(void *userdata, membrane_host_call_t *call) {
    store_t *s = userdata;
    size_t size = CAPACITY * 80;
    char *result = malloc(size);
    CHECK(result != NULL);
    strcpy(result, "[");
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        if (i > 0) strcat(result, ", ");
        quote(result, size - 2, s->keys[i]);
    }
    pthread_mutex_unlock(&s->lock);
    strcat(result, "]");
    bool ok = membrane_host_call_set_result(call, result);
    free(result);
    return ok;
}

static int wrong_result_refused = 0;

/* A `get` whose result is not an option<string>. */
static bool get_wrong_type(void *userdata, membrane_host_call_t *call) {
    (void)userdata;
    if (!membrane_host_call_set_result(call, "42") &&
        !membrane_host_call_set_result_binary(call, (const uint8_t *)"\x07", 1))
        __atomic_add_fetch(&wrong_result_refused, 1, __ATOMIC_SEQ_CST);
    return true;
}

/* A `get` that fails. */
static bool get_offline(void *userdata, membrane_host_call_t *call) {
    (void)userdata;
    CHECK(!membrane_host_call_set_error(call, "no-such-kind", "store offline"));
    CHECK(membrane_host_call_set_error(call, "unavailable", "store offline"));
    return false;
}

/* The store's interface, with `get` implemented by `get` and declared as `get_signature`. */
static membrane_interface_t *kv_interface(store_t *s, membrane_host_fn_t get,
                                          const char *get_signature) {
    membrane_interface_t *iface = NULL;
    OK((iface = membrane_interface_new(KV, error_out)) != NULL);
    s->refs = 3;
    OK(membrane_interface_func(iface, "get", get_signature, get, s, store_release, error_out));
    OK(membrane_interface_func(iface, "set",
                               "func(key: string, value: string) -> result<_, string>", kv_set,
                               s, store_release, error_out));
    OK(membrane_interface_func(iface, "keys", "func() -> list<string>", kv_keys, s, store_release,
                               error_out));
    return iface;
}

static const char *notes_path, *render_path;

/* The notes app: notes linked to the host's store and to the render module. */
static membrane_app_t *load_notes(membrane_runtime_t *rt, membrane_error_t **error) {
    membrane_spec_t *spec = membrane_spec_new();
    OK(membrane_spec_module(spec, "notes", notes_path, error_out));
    OK(membrane_spec_link(spec, "notes", "acme:kv/store", "host", error_out));
    OK(membrane_spec_link(spec, "notes", "acme:text/render", "render", error_out));
    OK(membrane_spec_module(spec, "render", render_path, error_out));
    membrane_app_t *app = membrane_runtime_load_spec(rt, spec, error);
    membrane_spec_free(spec);
    return app;
}

static char *add(const membrane_app_t *app, const char *text, membrane_error_t **error) {
    const char *args[1] = {text};
    char *result = NULL;
    if (!membrane_app_call(app, "notes", ADD, args, 1, &result, error)) return NULL;
    return result;
}

static void *adder(void *arg) {
    const membrane_app_t *app = arg;
    for (int i = 0; i < 8; i++) {
        membrane_error_t *err = NULL;
        char *result = add(app, "\"from a thread\"", &err);
        if (result == NULL) fail_with(__FILE__, __LINE__, "add", err);
        CHECK(contains(result, "ok("));
        membrane_string_free(result);
    }
    return NULL;
}

int main(int argc, char **argv) {
    CHECK(argc == 5);
    notes_path = argv[1];
    render_path = argv[2];
    membrane_runtime_t *rt = test_runtime(argv[4]);

    store_t *store = store_new();
    membrane_interface_t *iface =
        kv_interface(store, kv_get, "func(key: string) -> option<string>");
    OK(membrane_runtime_provide(rt, iface, error_out));
    membrane_interface_free(iface);

    membrane_app_t *notes = NULL;
    OK((notes = load_notes(rt, error_out)) != NULL);
    char *first = NULL;
    OK((first = add(notes, "\"first \\\"note\\\"\"", error_out)) != NULL);
    CHECK(same(first, "ok(1)"));
    membrane_string_free(first);

    /* Four threads at once, each on its own instance. */
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&threads[i], NULL, adder, notes) == 0);
    for (int i = 0; i < 4; i++) CHECK(pthread_join(threads[i], NULL) == 0);
    CHECK(store->sets == 2 * (1 + 4 * 8));

    char *shown = NULL;
    OK(membrane_app_call(notes, "notes", SHOW, NULL, 0, &shown, error_out));
    CHECK(contains(shown, "first \\\"note\\\""));
    CHECK(contains(shown, "from a thread"));
    membrane_string_free(shown);

    /* A command against the same store. */
    membrane_spec_t *spec = membrane_spec_new();
    OK(membrane_spec_module(spec, "cli", argv[3], error_out));
    OK(membrane_spec_link(spec, "cli", "acme:kv/store", "host", error_out));
    OK(membrane_spec_entry(spec, "cli", error_out));
    membrane_app_t *cli = NULL;
    OK((cli = membrane_runtime_load_spec(rt, spec, error_out)) != NULL);
    membrane_spec_free(spec);
    int32_t code = -1;
    OK(membrane_app_run(cli, NULL, 0, &code, error_out));
    CHECK(code == 0);
    pthread_mutex_lock(&store->lock);
    int i = find(store, "greeting");
    CHECK(i >= 0 && same(store->values[i], "hi"));
    pthread_mutex_unlock(&store->lock);
    membrane_app_free(cli);

    /* A declared type that is not the importer's: refused at load, naming both. */
    membrane_error_t *err = NULL;
    iface = kv_interface(store_new(), kv_get, "func(key: string) -> option<u32>");
    OK(membrane_runtime_provide(rt, iface, error_out));
    membrane_interface_free(iface);
    CHECK(load_notes(rt, &err) == NULL);
    CHECK(contains(membrane_error_message(err), "option<u32>"));
    EXPECT_ERROR(err, "link", "notes", KV "#get");
    err = NULL;

    /* A result of the wrong type fails the guest's call; the host goes on. */
    iface = kv_interface(store_new(), get_wrong_type, "func(string) -> option<string>");
    OK(membrane_runtime_provide(rt, iface, error_out));
    membrane_interface_free(iface);
    membrane_app_t *wrong = NULL;
    OK((wrong = load_notes(rt, error_out)) != NULL);
    CHECK(add(wrong, "\"x\"", &err) == NULL);
    CHECK(wrong_result_refused == 1);
    CHECK(contains(membrane_error_message(err), "no valid result"));
    EXPECT_ERROR(err, "invalid-args", "notes", NULL);
    err = NULL;
    membrane_app_free(wrong);

    /* A callback that fails, with the kind it chose. */
    iface = kv_interface(store_new(), get_offline, "func(string) -> option<string>");
    OK(membrane_runtime_provide(rt, iface, error_out));
    membrane_interface_free(iface);
    membrane_app_t *offline = NULL;
    OK((offline = load_notes(rt, error_out)) != NULL);
    CHECK(add(offline, "\"x\"", &err) == NULL);
    CHECK(contains(membrane_error_message(err), "store offline"));
    EXPECT_ERROR(err, "unavailable", "notes", NULL);
    err = NULL;

    /* Bad interface declarations. */
    CHECK(membrane_interface_new("not an interface", &err) == NULL);
    EXPECT_ERROR(err, "link", NULL, NULL);
    err = NULL;
    iface = membrane_interface_new(KV, NULL);
    CHECK(!membrane_interface_func(iface, "get", "func()", NULL, NULL, NULL, &err));
    EXPECT_ERROR(err, "invalid-args", NULL, NULL);
    err = NULL;
    membrane_interface_free(iface);

    membrane_app_free(offline);
    /* The notes app still holds the first store. */
    CHECK(stores_freed == 2);
    membrane_runtime_free(rt);
    membrane_app_free(notes);
    CHECK(stores_freed == 4);
    printf("host: ok\n");
    return 0;
}
