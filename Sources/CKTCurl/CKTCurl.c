#include "CKTCurl.h"
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct kt_curl {
    CURL *easy;
    char *buffer;
    size_t length;
    size_t capacity;
    atomic_int cancelled;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

kt_curl *kt_curl_new(void) {
    pthread_once(&global_once, global_init);
    kt_curl *handle = calloc(1, sizeof(kt_curl));
    if (!handle) return NULL;
    handle->easy = curl_easy_init();
    if (!handle->easy) { free(handle); return NULL; }
    return handle;
}

void kt_curl_free(kt_curl *handle) {
    if (!handle) return;
    curl_easy_cleanup(handle->easy);
    free(handle->buffer);
    free(handle);
}

void kt_curl_set_cancelled(kt_curl *handle, int cancelled) { atomic_store(&handle->cancelled, cancelled); }

/* libcurl calls this often during a transfer (and about once a second while it waits); a
   non-zero return aborts it with CURLE_ABORTED_BY_CALLBACK. */
static int on_progress(void *context, curl_off_t total_down, curl_off_t now_down, curl_off_t total_up, curl_off_t now_up) {
    (void)total_down; (void)now_down; (void)total_up; (void)now_up;
    kt_curl *handle = context;
    return atomic_load(&handle->cancelled);
}

static size_t on_data(char *data, size_t size, size_t count, void *context) {
    kt_curl *handle = context;
    size_t bytes = size * count;
    if (handle->length + bytes + 1 > handle->capacity) {
        size_t capacity = handle->capacity ? handle->capacity : 4096;
        while (capacity < handle->length + bytes + 1) capacity *= 2;
        char *grown = realloc(handle->buffer, capacity);
        if (!grown) return 0;
        handle->buffer = grown;
        handle->capacity = capacity;
    }
    memcpy(handle->buffer + handle->length, data, bytes);
    handle->length += bytes;
    return bytes;
}

int kt_curl_perform(kt_curl *handle, const char *method, const char *url,
                    const char *const *headers, size_t header_count,
                    const char *request_body, size_t request_body_length,
                    long timeout_ms, long *status, char **body, size_t *body_length,
                    char *error) {
    CURL *easy = handle->easy;
    struct curl_slist *list = NULL;
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = 0;
    curl_easy_reset(easy); /* options only: the connection cache survives */
    handle->length = 0;
    for (size_t i = 0; i < header_count; i++) list = curl_slist_append(list, headers[i]);
    list = curl_slist_append(list, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, handle);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, handle);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)request_body_length);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request_body ? request_body : "");
    }
    CURLcode code = atomic_load(&handle->cancelled) ? CURLE_ABORTED_BY_CALLBACK : curl_easy_perform(easy);
    curl_slist_free_all(list);
    if (code != CURLE_OK) {
        const char *text = errbuf[0] ? errbuf : curl_easy_strerror(code);
        strncpy(error, text, 255);
        error[255] = 0;
        return (int)code;
    }
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, status);
    char *copy = malloc(handle->length + 1);
    if (!copy) { strcpy(error, "out of memory"); return (int)CURLE_OUT_OF_MEMORY; }
    if (handle->length) memcpy(copy, handle->buffer, handle->length);
    copy[handle->length] = 0;
    *body = copy;
    *body_length = handle->length;
    return 0;
}

void kt_curl_free_body(char *body) { free(body); }

int kt_curl_is_cancelled(int code) { return (CURLcode)code == CURLE_ABORTED_BY_CALLBACK; }

int kt_curl_is_transport_error(int code) {
    switch ((CURLcode)code) {
    case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}
