#ifndef CKTCURL_H
#define CKTCURL_H
#include <stddef.h>

/* A thin, non-variadic wrapper around one libcurl easy handle (Swift cannot call
   curl_easy_setopt, which is variadic). One handle keeps its connections alive between
   requests; it must be used by one thread at a time. */

typedef struct kt_curl kt_curl;

/* A new handle, or NULL. */
kt_curl *kt_curl_new(void);
void kt_curl_free(kt_curl *handle);

/* Performs one request. Returns 0 on success (any HTTP status) or a libcurl error code, with
   a message in `error` (at least 256 bytes). On success *body (malloc'd, free with
   kt_curl_free_body) and *body_length hold the response body and *status the HTTP status. */
int kt_curl_perform(kt_curl *handle, const char *method, const char *url,
                    const char *const *headers, size_t header_count,
                    const char *request_body, size_t request_body_length,
                    long timeout_ms, long *status, char **body, size_t *body_length,
                    char *error);

void kt_curl_free_body(char *body);

/* Marks the handle's request cancelled (any thread): a request running stops at libcurl's next
   progress call, one not started yet does not start; both fail with a code for which
   kt_curl_is_cancelled is true. Set 0 again before the next request. */
void kt_curl_set_cancelled(kt_curl *handle, int cancelled);

/* Whether a libcurl error code means the request was cancelled (kt_curl_set_cancelled). */
int kt_curl_is_cancelled(int code);

/* Whether a libcurl error code means the request may not have reached the server or timed out. */
int kt_curl_is_transport_error(int code);
#endif
