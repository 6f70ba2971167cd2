/*
 * membrane.h: the C API of Membrane, an isolation sandbox runtime for WebAssembly
 * components. Link with -lmembrane_c (the cdylib of runtime/c, built by
 * `cargo build -p membrane-c`). C99.
 *
 * What it offers: a runtime (the engine) loads apps, from a manifest (membrane.toml) or
 * declared in code (membrane_spec_t); an app's exports are called with arguments and
 * results as WAVE text (the WebAssembly value encoding: "hi", 42, {x: 1, y: 2}, some("a"),
 * ok(3), [1, 2]) or in the binary value form described at membrane_app_call_binary; the
 * host can implement WIT interfaces in C (membrane_interface_t) that modules link to with
 * `links = { "acme:kv/store" = "host" }`; modules are upgraded and reloaded while they
 * serve.
 *
 * Conventions
 * - Errors: a function that can fail returns bool (true: success) or a pointer (NULL on
 *   failure) and takes `membrane_error_t **error` last. On failure it stores a new error
 *   in *error, unless `error` is NULL; on success it leaves *error alone (initialise it to
 *   NULL). Read the error with the membrane_error_* accessors; free it with
 *   membrane_error_free.
 * - Ownership: every object the library returns has exactly one function that frees it,
 *   and each of them accepts NULL: membrane_config_free, membrane_runtime_free,
 *   membrane_spec_free, membrane_interface_free, membrane_app_free, membrane_error_free;
 *   strings (char *) returned through out-parameters or as results belong to the caller
 *   and are freed with membrane_string_free, byte buffers with membrane_bytes_free.
 *   Strings returned as `const char *` are borrowed: they live as long as the object they
 *   came from (say so at each function) and are never freed by the caller. Functions never
 *   take ownership of their arguments (but for the userdata of membrane_interface_func):
 *   free what you made, in any order (an app keeps its runtime alive after
 *   membrane_runtime_free).
 * - Strings passed in are NUL-terminated UTF-8; a NULL pointer or a string that is not
 *   UTF-8 is an error of kind "invalid-args". Paths may be any bytes but NUL.
 * - No failure inside the library crosses into C as a crash or an unwinding: it is an
 *   error of kind "host-panic".
 *
 * Threads
 * - membrane_runtime_t and membrane_app_t may be used from any thread, by several threads
 *   at once: calls of one app from several threads run in parallel, each on its own
 *   instance of the module, on the calling thread.
 * - membrane_config_t, membrane_spec_t and membrane_interface_t are builders: use each from
 *   one thread at a time. membrane_error_t is immutable and may be read from any thread.
 * - Loads, runs, upgrades and reloads block the calling thread; the runtime runs their
 *   background work on its own worker threads (2 by default).
 * - Host functions run on the thread running the guest that called them, possibly on
 *   several threads at once. A host function must not call into the library except the
 *   membrane_host_call_* functions (and must not free handles).
 */
#ifndef MEMBRANE_H
#define MEMBRANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Types --------------------------------------------------------------------------- */

/** Settings of a runtime (membrane_config_new). */
typedef struct membrane_config membrane_config_t;

/** The engine that compiles and runs apps (membrane_runtime_new). */
typedef struct membrane_runtime membrane_runtime_t;

/** An app declared in code: its modules, grants, limits and links (membrane_spec_new). */
typedef struct membrane_spec membrane_spec_t;

/** A loaded app, ready to be called (membrane_runtime_load, membrane_runtime_load_spec). */
typedef struct membrane_app membrane_app_t;

/** An error: a kind, a message and the fields that say where (membrane_error_kind ...). */
typedef struct membrane_error membrane_error_t;

/** A WIT interface implemented by the host application in C (membrane_interface_new). */
typedef struct membrane_interface membrane_interface_t;

/** One call of a host function, valid only while its callback runs. */
typedef struct membrane_host_call membrane_host_call_t;

/**
 * A host function: gets the `userdata` given to membrane_interface_func and the call, reads
 * the arguments and sets the result with the membrane_host_call_* functions, and returns
 * true on success. Returning false fails the guest's call (membrane_host_call_set_error
 * says why). Called on the thread running the guest (the thread that called
 * membrane_app_call, or one of the runtime's), possibly on several threads at once: it and
 * its userdata must be thread-safe. It should not block: the module's timeout does not
 * interrupt it.
 */
typedef bool (*membrane_host_fn_t)(void *userdata, membrane_host_call_t *call);

/** Frees a host function's userdata once the library no longer needs it (on any thread). */
typedef void (*membrane_free_fn_t)(void *userdata);

/* ---- Library ------------------------------------------------------------------------- */

/** The library's version, such as "0.1.0": a static string, never freed. */
const char *membrane_version(void);

/** Frees a string returned by the library. NULL does nothing. */
void membrane_string_free(char *string);

/** Frees a byte buffer returned by the library (membrane_app_call_binary). NULL does nothing. */
void membrane_bytes_free(uint8_t *bytes);

/* ---- Errors -------------------------------------------------------------------------- */

/**
 * The error's kind, a short stable name to compare with strcmp: "manifest", "link",
 * "denied", "not-found", "timeout", "out-of-fuel", "memory-limit", "stack-overflow",
 * "hostcall-limit", "table-limit", "files-limit", "disk-quota", "trap", "overloaded",
 * "unavailable", "io", "invalid-component", "invalid-args", "exit", "conflict",
 * "host-panic", "crashed", "integrity" (more may be added). Borrowed from `error`; NULL
 * when `error` is NULL.
 */
const char *membrane_error_kind(const membrane_error_t *error);

/**
 * The message with its causes, safe to print (text from guests is escaped). Borrowed from
 * `error`; NULL when `error` is NULL.
 */
const char *membrane_error_message(const membrane_error_t *error);

/** The module concerned, or NULL. Borrowed from `error`. */
const char *membrane_error_module(const membrane_error_t *error);

/** The export or host function concerned (`ns:pkg/iface@version#func`), or NULL. Borrowed. */
const char *membrane_error_export(const membrane_error_t *error);

/** The manifest key to change (`modules.api.limits.memory`), or NULL. Borrowed. */
const char *membrane_error_key(const membrane_error_t *error);

/** The manifest file the problem is in, or NULL. Borrowed from `error`. */
const char *membrane_error_file(const membrane_error_t *error);

/** The manifest line the problem is on (from 1), or 0 when unknown. */
size_t membrane_error_line(const membrane_error_t *error);

/**
 * How many problems the error reports: the list when a load found several (each with its
 * own kind, key and line), else 1, the error itself. 0 only when `error` is NULL.
 */
size_t membrane_error_problem_count(const membrane_error_t *error);

/**
 * Problem `index` (from 0) as an error, read with the same accessors (problem 0 of an
 * error that reports one is the error itself); NULL when out of range. Borrowed from
 * `error`: never pass it to membrane_error_free.
 */
const membrane_error_t *membrane_error_problem(const membrane_error_t *error, size_t index);

/** The message of problem `index`, or NULL when out of range. Borrowed from `error`. */
const char *membrane_error_problem_message(const membrane_error_t *error, size_t index);

/** Frees an error returned through an out-parameter. NULL does nothing. */
void membrane_error_free(membrane_error_t *error);

/* ---- Settings and runtimes ----------------------------------------------------------- */

/**
 * New settings with the defaults: no compiled-code cache (every load compiles), 1000
 * instance slots, fuel metering off, 2 worker threads. NULL only if out of memory.
 */
membrane_config_t *membrane_config_new(void);

/** Keeps compiled components in `dir` (created private, 0700), so later loads skip compiling. */
bool membrane_config_cache_dir(membrane_config_t *config, const char *dir,
                               membrane_error_t **error);

/**
 * Uses the `membrane` command's cache directory: $MEMBRANE_CACHE_DIR, else
 * $XDG_CACHE_HOME/membrane, else $HOME/.cache/membrane ("not-found" when none is set).
 */
bool membrane_config_default_cache(membrane_config_t *config, membrane_error_t **error);

/**
 * How many instances may be live at once across the runtime's apps, reserved up front
 * (fast instantiation); 0 allocates each instance on demand instead. Default 1000.
 */
bool membrane_config_instance_slots(membrane_config_t *config, uint32_t slots,
                                    membrane_error_t **error);

/** Meters fuel, so that modules can set a fuel budget (membrane_spec_fuel). Default off. */
bool membrane_config_fuel(membrane_config_t *config, bool on, membrane_error_t **error);

/** The worker threads of the runtime's background work (at least 1). Default 2. */
bool membrane_config_worker_threads(membrane_config_t *config, size_t threads,
                                    membrane_error_t **error);

/** Frees settings. NULL does nothing. */
void membrane_config_free(membrane_config_t *config);

/**
 * Creates a runtime with `config` (NULL: the defaults; the settings are copied, free them
 * when you like). Returns NULL on failure.
 */
membrane_runtime_t *membrane_runtime_new(const membrane_config_t *config,
                                         membrane_error_t **error);

/**
 * Registers `iface` (copied) for the apps loaded afterwards: modules reach it only
 * through a link to "host". Registering a name again replaces it for later loads.
 */
bool membrane_runtime_provide(membrane_runtime_t *runtime,
                              const membrane_interface_t *iface,
                              membrane_error_t **error);

/**
 * Frees a runtime handle; apps loaded from it keep working until they are freed. NULL does
 * nothing.
 */
void membrane_runtime_free(membrane_runtime_t *runtime);

/* ---- Apps declared in code ----------------------------------------------------------- */

/** A new, empty app declaration. NULL only if out of memory. */
membrane_spec_t *membrane_spec_new(void);

/**
 * Declares module `name`, loaded from the component file `component_path`, with no grants
 * and the default limits (64 MiB of memory, 10 s per call); replaces an earlier
 * declaration of that name. The setters below change a declared module ("not-found" for
 * another name).
 */
bool membrane_spec_module(membrane_spec_t *spec, const char *name, const char *component_path,
                          membrane_error_t **error);

/** Makes `module` the app's entry: the command membrane_app_run runs. */
bool membrane_spec_entry(membrane_spec_t *spec, const char *module, membrane_error_t **error);

/** Caps the module's linear memory at `bytes`; a call that needs more fails ("memory-limit"). */
bool membrane_spec_memory(membrane_spec_t *spec, const char *module, uint64_t bytes,
                          membrane_error_t **error);

/** The wall-clock budget of one call into the module, in ms; past it the call fails ("timeout"). */
bool membrane_spec_timeout_ms(membrane_spec_t *spec, const char *module, uint64_t milliseconds,
                              membrane_error_t **error);

/**
 * Gives every call of the module `fuel` units of fuel; past it the call fails ("out-of-fuel").
 * The runtime needs fuel metering (membrane_config_fuel).
 */
bool membrane_spec_fuel(membrane_spec_t *spec, const char *module, uint64_t fuel,
                        membrane_error_t **error);

/**
 * Caps how many instances of the module run at once (`instances`) and how many callers
 * may wait for one (`queue`); past that, calls fail at once ("overloaded").
 */
bool membrane_spec_concurrency(membrane_spec_t *spec, const char *module, size_t instances,
                               size_t queue, membrane_error_t **error);

/** Grants the module the environment variable `key` with `value`. */
bool membrane_spec_env(membrane_spec_t *spec, const char *module, const char *key,
                       const char *value, membrane_error_t **error);

/**
 * Grants the module the host directory `host_path` at the absolute guest path
 * `guest_path`, read-only unless `writable`. Checked when the app loads.
 */
bool membrane_spec_dir(membrane_spec_t *spec, const char *module, const char *host_path,
                       const char *guest_path, bool writable, membrane_error_t **error);

/** Allows the module outbound TCP connections to `destination` (`host:port`). */
bool membrane_spec_network(membrane_spec_t *spec, const char *module, const char *destination,
                           membrane_error_t **error);

/**
 * Links the module's import `iface` (`ns:pkg/iface`, optionally `@version`) to the
 * module `provider`, or to "host" for an interface registered with
 * membrane_runtime_provide. Checked, function by function, when the app loads ("link").
 */
bool membrane_spec_link(membrane_spec_t *spec, const char *module, const char *iface,
                        const char *provider, membrane_error_t **error);

/** Frees a declaration. NULL does nothing. */
void membrane_spec_free(membrane_spec_t *spec);

/* ---- Apps ---------------------------------------------------------------------------- */

/**
 * Loads the app of the manifest at `manifest_path` (paths in it are relative to it):
 * parses it, compiles the modules, checks every link. Every problem found is in the error
 * (membrane_error_problem). Returns NULL on failure.
 */
membrane_app_t *membrane_runtime_load(membrane_runtime_t *runtime, const char *manifest_path,
                                      membrane_error_t **error);

/** Loads the app `spec` declares (the spec is copied). Returns NULL on failure. */
membrane_app_t *membrane_runtime_load_spec(membrane_runtime_t *runtime,
                                           const membrane_spec_t *spec,
                                           membrane_error_t **error);

/**
 * Calls `export_name` of `module` (`ns:pkg/iface#func`, optionally with `@version` after the
 * interface, or a root-level name) with `nargs` arguments, one WAVE text per parameter.
 * On success *result (when `result` is not NULL) is the result as WAVE text, to free with
 * membrane_string_free, or NULL for a function without a result. Runs on the calling
 * thread under the module's limits; a failed call (a trap, a limit, a timeout) discards
 * that instance and the next call gets a fresh one. `args` may be NULL when `nargs` is 0.
 */
bool membrane_app_call(const membrane_app_t *app, const char *module,
                       const char *export_name, const char *const *args, size_t nargs,
                       char **result, membrane_error_t **error);

/**
 * membrane_app_call with values in the binary value form: the component model's value
 * definition encoding. `args` is the encodings of the parameters, concatenated
 * (`args_len` bytes; NULL when 0); *results the encodings of the results, concatenated
 * (*results_len bytes; NULL when there are none), to free with membrane_bytes_free.
 *
 * The encoding follows the type and carries no tags beyond what the type needs: bool, s8
 * and u8 are one byte; wider integers are LEB128 (signed for s16..s64); f32 and f64 are
 * little-endian; a char is its UTF-8 bytes; a string is a u32 LEB128 byte length then
 * UTF-8; a list is a u32 LEB128 length then its elements; records and tuples are their
 * fields in order; variants and enums a u32 LEB128 case index then the case's payload;
 * option and result a tag byte (0: none / ok, 1: some / err) then the payload; flags a
 * little-endian bit vector of ceil(n / 8) bytes. Resources cannot be passed.
 * membrane_app_signature gives the types.
 */
bool membrane_app_call_binary(const membrane_app_t *app, const char *module,
                              const char *export_name, const uint8_t *args, size_t args_len,
                              uint8_t **results, size_t *results_len, membrane_error_t **error);

/**
 * The WIT type of `export_name`, its types written out ("func(p: record { x: s32, y: s32 })
 * -> u64", as membrane_interface_func takes signatures), to free with membrane_string_free.
 */
bool membrane_app_signature(const membrane_app_t *app, const char *module,
                            const char *export_name, char **signature,
                            membrane_error_t **error);

/**
 * Runs the entry module's `wasi:cli/run` with `args` (after argv[0], which is the module
 * name); its exit status to *exit_code (when not NULL). Its stdin is closed. Blocks.
 */
bool membrane_app_run(const membrane_app_t *app, const char *const *args, size_t nargs,
                      int32_t *exit_code, membrane_error_t **error);

/**
 * What `module` is doing now, as JSON text (NULL `module`: every module, as
 * {"modules": {"<name>": {...}}}); to free with membrane_string_free. A module's object
 * has at least "generation", "hash", "state" ("serving" or "probation"), "calls", "busy",
 * "idle", "waiting", "circuit" ("healthy", "circuit-open", "trial"), "recent_failures",
 * "failing", "memory_limit", "timeout_ms" and "last_upgrade". NULL on failure.
 */
char *membrane_app_status(const membrane_app_t *app, const char *module,
                          membrane_error_t **error);

/**
 * Replaces `module` of the app while it serves with the declaration of the same name in
 * `spec`: the new version passes the load's checks against the live app first (a failure
 * changes nothing and lists every problem); calls running finish on the old version. A
 * version that widens a grant or raises a limit is refused ("denied") unless
 * `accept_wider_grants`. *report (when not NULL) is what happened as JSON ({"module",
 * "from", "to", "hash", "elapsed_ms", "grants": [...]}), to free with membrane_string_free.
 */
bool membrane_app_upgrade(const membrane_app_t *app, const membrane_spec_t *spec,
                          const char *module, bool accept_wider_grants, char **report,
                          membrane_error_t **error);

/**
 * Reads the manifest at `manifest_path` (NULL: the one the app was loaded from) and
 * upgrades every module whose component, grants, limits or links changed, all checked
 * before any switches. *report (when not NULL) is JSON ({"upgraded": [...], "unchanged":
 * [...], "warnings": [...]}), to free with membrane_string_free.
 */
bool membrane_app_reload(const membrane_app_t *app, const char *manifest_path,
                         bool accept_wider_grants, char **report, membrane_error_t **error);

/**
 * Goes back to the previous generation of `module`, kept during the probation that follows
 * an upgrade ("not-found" when there is none). *report as for membrane_app_upgrade.
 */
bool membrane_app_rollback(const membrane_app_t *app, const char *module, char **report,
                           membrane_error_t **error);

/** Frees an app. No call of it may be running. NULL does nothing. */
void membrane_app_free(membrane_app_t *app);

/* ---- Host interfaces ----------------------------------------------------------------- */

/**
 * A new host interface called `name` (`ns:pkg/iface@version`, as the modules import it),
 * with no functions yet. Returns NULL on failure ("link": a malformed name).
 */
membrane_interface_t *membrane_interface_new(const char *name, membrane_error_t **error);

/**
 * Adds function `name` with the WIT type `signature`, implemented by `callback`.
 * `signature` is written as membrane_app_signature writes types, parameter names optional:
 * "func(key: string) -> option<string>", "func(string)", "func() -> list<string>". An app
 * whose module imports the function with another type is refused at load (kind "link",
 * naming the module, the function and both types). Resources are not supported.
 *
 * On success the library owns `userdata`: it calls `free_userdata` (when not NULL) once,
 * when the last runtime and app using the function are freed (or the function is
 * replaced by one of the same name). On failure `userdata` stays yours.
 */
bool membrane_interface_func(membrane_interface_t *iface, const char *name,
                             const char *signature, membrane_host_fn_t callback, void *userdata,
                             membrane_free_fn_t free_userdata, membrane_error_t **error);

/** Frees an interface (runtimes it was provided to keep their copy). NULL does nothing. */
void membrane_interface_free(membrane_interface_t *iface);

/** How many arguments the call has (its function's parameters). */
size_t membrane_host_call_arg_count(const membrane_host_call_t *call);

/**
 * Argument `index` (from 0) as WAVE text, or NULL when out of range. Borrowed from the
 * call: valid until the callback returns.
 */
const char *membrane_host_call_arg(membrane_host_call_t *call, size_t index);

/**
 * The arguments in the binary value form (see membrane_app_call_binary), concatenated:
 * *data and *len. Borrowed from the call: valid until the callback returns.
 */
bool membrane_host_call_args_binary(membrane_host_call_t *call, const uint8_t **data,
                                    size_t *len, membrane_error_t **error);

/**
 * Sets the function's result from WAVE text. Returns false, and leaves the result unset,
 * when the text is not a value of the result type (or the function has no result): a
 * callback that then returns true fails the guest's call ("invalid-args"), never the host.
 */
bool membrane_host_call_set_result(membrane_host_call_t *call, const char *wave);

/**
 * Sets the function's results from the binary value form (their encodings concatenated).
 * Returns false, and leaves them unset, when the bytes are not values of the result types.
 */
bool membrane_host_call_set_result_binary(membrane_host_call_t *call, const uint8_t *data,
                                          size_t len);

/**
 * Says why the call failed, for a callback that then returns false: the guest's call
 * fails with an error of kind `kind` (an error kind's name; NULL: "host-panic") whose
 * causes include `message`. Returns false when `kind` names no kind ("host-panic" is used).
 */
bool membrane_host_call_set_error(membrane_host_call_t *call, const char *kind,
                                  const char *message);

#ifdef __cplusplus
}
#endif

#endif /* MEMBRANE_H */
