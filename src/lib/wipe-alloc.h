/*
 * wipe-alloc — libevent's memory is zeroed before it goes back to malloc.
 *
 * Every byte a client sends passes through libevent's buffers: an AUTH line
 * (base64 of a password), message data. Drained buffers are freed, and freed
 * heap keeps its old contents until reused, where a core dump or a later bug
 * could show them. Installed once at start-up (before any libevent call), the
 * functions here wipe each block on free and on a moving realloc. OpenSSL's
 * decrypted records are cleansed by SSL_OP_CLEANSE_PLAINTEXT (net/tls.c).
 */
#ifndef RAMPART_WIPE_ALLOC_H
#define RAMPART_WIPE_ALLOC_H

/* Must run before the first libevent call of the process (and its children). */
void wipe_alloc_install(void);

#endif
