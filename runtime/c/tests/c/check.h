/* What the C tests share: checks that stop the program with the file and line, and a
 * check of an error's kind and fields. A failed check exits with _Exit(1), so that the
 * leak checker does not report what the failed test had not freed yet. */
#ifndef MEMBRANE_TEST_CHECK_H
#define MEMBRANE_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membrane.h"

/* Stops the program when `cond` is false. */
#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
            fflush(stderr);                                                               \
            _Exit(1);                                                                     \
        }                                                                                 \
    } while (0)

/* Prints an error and stops the program. */
static inline void fail_with(const char *file, int line, const char *what, membrane_error_t *err) {
    fprintf(stderr, "%s:%d: %s failed: [%s] %s\n", file, line, what,
            err ? membrane_error_kind(err) : "?", err ? membrane_error_message(err) : "?");
    fflush(stderr);
    _Exit(1);
}

/* Runs `call`, which takes `&err` last and returns true (or non-NULL) on success. */
#define OK(call)                                                                          \
    do {                                                                                  \
        membrane_error_t *err_ = NULL;                                                    \
        membrane_error_t **error_out = &err_;                                             \
        if (!(call)) fail_with(__FILE__, __LINE__, #call, err_);                          \
        CHECK(err_ == NULL);                                                              \
    } while (0)

/* Whether `s` contains `part`. */
static inline int contains(const char *s, const char *part) {
    return s != NULL && part != NULL && strstr(s, part) != NULL;
}

/* Whether two strings are equal (NULL equals only NULL). */
static inline int same(const char *a, const char *b) {
    if (a == NULL || b == NULL) return a == b;
    return strcmp(a, b) == 0;
}

/* Checks that the string `got` is `expected`, printing both when not. */
#define CHECK_SAME(got, expected)                                                         \
    do {                                                                                  \
        const char *g_ = (got), *x_ = (expected);                                         \
        if (!same(g_, x_)) {                                                              \
            fprintf(stderr, "%s:%d: expected %s, got %s\n", __FILE__, __LINE__, x_,       \
                    g_ ? g_ : "NULL");                                                    \
            _Exit(1);                                                                     \
        }                                                                                 \
    } while (0)

/* Checks that `err` is of `kind`, names `module` and `export` (NULL: any), then frees it. */
#define EXPECT_ERROR(err, kind, module, export_name)                                      \
    do {                                                                                  \
        membrane_error_t *e_ = (err);                                                     \
        CHECK(e_ != NULL);                                                                \
        if (!same(membrane_error_kind(e_), (kind))) {                                     \
            fprintf(stderr, "%s:%d: expected kind %s, got [%s] %s\n", __FILE__, __LINE__, \
                    (kind), membrane_error_kind(e_), membrane_error_message(e_));         \
            _Exit(1);                                                                     \
        }                                                                                 \
        CHECK(membrane_error_message(e_) != NULL && membrane_error_message(e_)[0]);       \
        if ((module) != NULL) CHECK(same(membrane_error_module(e_), (module)));           \
        if ((export_name) != NULL) CHECK(same(membrane_error_export(e_), (export_name))); \
        membrane_error_free(e_);                                                          \
    } while (0)

/* A runtime with the test's compiled-code cache (argv), 64 instance slots. */
static inline membrane_runtime_t *test_runtime(const char *cache_dir) {
    membrane_config_t *config = membrane_config_new();
    CHECK(config != NULL);
    OK(membrane_config_cache_dir(config, cache_dir, error_out));
    OK(membrane_config_instance_slots(config, 64, error_out));
    membrane_runtime_t *rt = NULL;
    OK((rt = membrane_runtime_new(config, error_out)) != NULL);
    membrane_config_free(config);
    return rt;
}

#endif
