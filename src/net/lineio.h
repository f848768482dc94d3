/*
 * lineio — all socket I/O of a protocol session, over a libevent bufferevent.
 *
 * It hands out complete lines with a hard maximum length, gives raw access to
 * buffered input for message data, queues output, applies a read timeout, and
 * swaps the transport to TLS underneath (STARTTLS or implicit TLS) so protocol
 * code never calls OpenSSL. Input is read only while the owner wants it: a
 * session waiting for the auth or queue process pauses input, and the kernel
 * socket buffer (plus at most LINEIO_MAX_BUFFERED bytes here) provides
 * back-pressure, so memory per connection stays bounded whatever the peer sends.
 */
#ifndef RAMPART_LINEIO_H
#define RAMPART_LINEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

struct event_base;
struct evbuffer;
struct lineio;

#define LINEIO_MAX_BUFFERED (64 * 1024)

enum lineio_event {
	LINEIO_EOF,        /* the peer closed */
	LINEIO_ERROR,      /* socket or TLS error, or a TLS handshake that timed out */
	LINEIO_TIMEOUT,    /* no input within the read timeout */
	LINEIO_FLUSHED,    /* output drained after lineio_close_after_flush() */
};

struct lineio_callbacks {
	void (*input)(struct lineio *io, void *ctx);   /* new input is buffered */
	void (*event)(struct lineio *io, enum lineio_event ev, void *ctx);
};

/* Wraps a connected socket (owned from now on). With tls_ctx, TLS starts at once
 * as the server side (implicit TLS, RFC 8314). NULL on failure (the fd is then
 * closed). A client wraps its socket once its non-blocking connect() has
 * completed (the SMTP client waits for that itself), without tls_ctx. */
struct lineio *lineio_new(struct event_base *base, int fd, SSL_CTX *tls_ctx,
    const struct lineio_callbacks *cb, void *ctx);
void lineio_free(struct lineio **io);

/*
 * Takes one line from the input. Returns 1 with the line (CRLF or bare LF removed,
 * NUL-terminated; it may contain NUL bytes, *len_r tells) in buf, 0 when no
 * complete line is buffered yet, -1 when the line is longer than max (not
 * counting CRLF): the line is then discarded up to and including its LF, which
 * may need more input; keep calling and the discarding finishes by itself.
 * buf must hold max + 1 bytes.
 */
int lineio_read_line(struct lineio *io, char *buf, size_t max, size_t *len_r);
/* Buffered raw input (for message data); drain what you consume. */
struct evbuffer *lineio_input(struct lineio *io);
/* Pause or resume reading from the socket (and input callbacks). */
void lineio_pause(struct lineio *io, bool paused);

/* Stops reading until the output has drained, then calls input again: a peer
 * that pipelines commands but never reads replies cannot grow our output. */
void lineio_wait_output(struct lineio *io);

void lineio_write(struct lineio *io, const void *data, size_t len);
void lineio_printf(struct lineio *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like lineio_write, for bytes that carry a secret (an AUTH line a client
 * sends): the queued copy is wiped when it has been written out. */
void lineio_write_secret(struct lineio *io, const void *data, size_t len);
size_t lineio_output_pending(struct lineio *io);

void lineio_set_timeout(struct lineio *io, int seconds);
/* Stop reading, flush output, then report LINEIO_FLUSHED. */
void lineio_close_after_flush(struct lineio *io);

/* STARTTLS (RFC 3207 §4.2): discards any buffered input, writes `reply` in clear
 * text, then starts the TLS handshake. -1 if TLS could not be set up. */
int lineio_starttls(struct lineio *io, SSL_CTX *tls_ctx, const char *reply);
/* The client side of STARTTLS (RFC 3207 §4.2), after the server's 220: discards
 * any buffered input (the server may not have sent more before TLS), then
 * starts the handshake on ssl, which lineio owns from now on (also on failure).
 * `done` runs when the handshake has completed; a failed handshake, or one not
 * finished within the timeout, is reported as LINEIO_ERROR instead. The SSL is
 * set up by the caller (tls-client.h), which reads verification afterwards.
 * -1 if the TLS layer could not be made. */
typedef void lineio_tls_done_fn(struct lineio *io, void *ctx);
int lineio_starttls_client(struct lineio *io, SSL *ssl, lineio_tls_done_fn *done);
bool lineio_is_tls(struct lineio *io);
/* Protocol and cipher of the TLS session ("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256). */
bool lineio_tls_info(struct lineio *io, const char **version_r, const char **cipher_r, int *bits_r);

#endif
