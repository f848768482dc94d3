/*
 * spool-private — what the spool's writer (spool.c) and reader (spool-read.c)
 * share: the handle, the format's fixed strings and names, the escaping rule,
 * and reading a spool file's header. See spool.h for the format.
 */
#ifndef RAMPART_QUEUE_SPOOL_PRIVATE_H
#define RAMPART_QUEUE_SPOOL_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "queue/envelope.h"
#include "queue/queue-msg.h"
#include "queue/spool.h"

#define SPOOL_MAGIC_V1 "RAMPART-SPOOL 1"
#define SPOOL_MAGIC_V2 "RAMPART-SPOOL 2"
#define DATA_END_KEY "data-end "
#define DATA_END_DIGITS 16
#define TRAILER_END "end\n"

/* The longest line the writer can produce (a recipient with three values of
 * ENVELOPE_MAX_STR bytes, each escaped to three times its size) must load. */
_Static_assert(SPOOL_MAX_LINE > 3 * 3 * ENVELOPE_MAX_STR + 64, "SPOOL_MAX_LINE too small");
/* data-end sits at a fixed place: right after the magic, on the second line. */
_Static_assert(SPOOL_DATA_END_AT == sizeof(SPOOL_MAGIC_V2 "\n" DATA_END_KEY) - 1,
    "SPOOL_DATA_END_AT does not match the format");
/* The longest trailer the writer can produce must load. */
_Static_assert(SPOOL_TRAILER_MAX >= 3 * QUEUE_ADDED_MAX + sizeof("added \nfolder Junk\n" TRAILER_END),
    "SPOOL_TRAILER_MAX too small");

struct spool {
	int incoming_fd;
	int queue_fd;
	int hold_fd;       /* hold/: messages the operator put aside (spool_hold) */
};

__attribute__((unused)) static const char *const body_names[] = { "7BIT", "8BITMIME" };
__attribute__((unused)) static const char *const ret_names[] = { "NONE", "FULL", "HDRS" };
__attribute__((unused)) static const char *const notify_names[] = { "NEVER", "SUCCESS", "FAILURE", "DELAY" };
__attribute__((unused)) static const char status_chars[3] = { 'P', 'D', 'F' };

/* Octets a value holds as %XX: controls, SP, DEL and '%' itself. */
static inline bool
spool_needs_escape(unsigned char c)
{
	return c < 0x21 || c == 0x7f || c == '%';
}

/* The directory of a place, and its name in sentences. */
static inline int
spool_place_fd(const struct spool *s, enum spool_place place, const char **name_r)
{
	*name_r = place == SPOOL_HELD ? "hold" : "queue";
	return place == SPOOL_HELD ? s->hold_fd : s->queue_fd;
}

/* What the header of a spool file says about the file. */
struct header_info {
	unsigned version;
	off_t data_offset;
	uint64_t data_end;          /* as written (version 2; 0 = not committed) */
};

/* Reads the header of dir_fd/id into a new *e_r through a descriptor of its own
 * (so that no other descriptor's position moves); when expect is not NULL, the
 * file must be the one it describes. -1 with *why and *err_r (EBADMSG for a
 * corrupt file, ENOMEM, or a read error's errno) on failure. */
int spool_read_header(int dir_fd, const char *id, const struct stat *expect,
    struct envelope **e_r, struct header_info *hi, const char **why, int *err_r);

#endif
