/*
 * wire — the byte encoding of IPC payloads.
 *
 * Encoders append to an evbuffer; decoders read from a bounded wire_reader that
 * never reads past its end: any short or malformed field sets r->bad, later reads
 * return zero values, and wire_reader_finish() reports the error once. Integers are
 * little-endian fixed width. A string is u32 length (including a trailing NUL) then
 * the bytes and the NUL; length 0 encodes NULL. Decoded strings point into the frame
 * and live as long as it does. Every message type's encode/decode pair lives in the
 * module that owns that message (auth-msg.c, queue-msg.c, ctl-msg.c), side by side.
 */
#ifndef RAMPART_WIRE_H
#define RAMPART_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

void wire_put_u8(struct evbuffer *b, uint8_t v);
void wire_put_u32(struct evbuffer *b, uint32_t v);
void wire_put_u64(struct evbuffer *b, uint64_t v);
/* NULL is encoded distinctly from "". */
void wire_put_str(struct evbuffer *b, const char *s);
/* Bytes with a u32 length prefix. */
void wire_put_blob(struct evbuffer *b, const void *data, size_t len);

struct wire_reader {
	const uint8_t *p;
	size_t left;
	bool bad;
};

void wire_reader_init(struct wire_reader *r, const void *data, size_t len);
uint8_t wire_get_u8(struct wire_reader *r);
uint32_t wire_get_u32(struct wire_reader *r);
uint64_t wire_get_u64(struct wire_reader *r);
/* NULL for an encoded NULL or on error (then r->bad is set). Rejects embedded NULs. */
const char *wire_get_str(struct wire_reader *r);
/* Like wire_get_str but an encoded NULL is an error: always a string on success. */
const char *wire_get_str_nn(struct wire_reader *r);
const void *wire_get_blob(struct wire_reader *r, size_t *len_r);
/* A count that must not exceed max (guards allocation sizes taken from the wire). */
uint32_t wire_get_count(struct wire_reader *r, uint32_t max);
/* 0 when every field decoded and nothing is left over, else -1 with *error_r set. */
int wire_reader_finish(struct wire_reader *r, const char **error_r);

#endif
