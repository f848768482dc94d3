/* wipe-alloc — see wipe-alloc.h. */
#include "lib/wipe-alloc.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

static void
wipe_free(void *p)
{
	if (p == NULL)
		return;
	sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

/* realloc would leave the old block unwiped when it moves: do the move here. */
static void *
wipe_realloc(void *p, size_t size)
{
	if (p == NULL)
		return malloc(size);
	size_t old = malloc_usable_size(p);
	if (size <= old)
		return p;   /* shrinking in place keeps the bytes inside the block */
	void *n = malloc(size);
	if (n == NULL)
		return NULL;
	memcpy(n, p, old);
	wipe_free(p);
	return n;
}

void
wipe_alloc_install(void)
{
	event_set_mem_functions(malloc, wipe_realloc, wipe_free);
}
