/*
 * relay-secret — the smarthost password, read from relay.password_file by the
 * queue process alone, at start (DESIGN: front processes hold no secrets; the
 * parent never reads it either, so no process forked from it inherits a copy).
 *
 * The file holds the password on its first line (a final LF or CRLF is not part
 * of it). It must be a regular file, not a symlink, readable by nobody beyond its
 * owner and group (mode 0600 or 0640), at most RELAY_SECRET_MAX octets, without
 * NUL, CR or LF inside the password. It is read with read(2) straight into
 * guarded memory (sodium_malloc), never through stdio buffers.
 */
#ifndef RAMPART_RELAY_SECRET_H
#define RAMPART_RELAY_SECRET_H

#define RELAY_SECRET_MAX 1024

/* 0 and a NUL-terminated password in *secret_r (free with relay_secret_free), or
 * -1 and a sentence in *error_r (nothing of the file's content in it). */
int relay_secret_load(const char *path, char **secret_r, const char **error_r);
/* Wipes and frees; NULL is fine. */
void relay_secret_free(char **secret);

#endif
