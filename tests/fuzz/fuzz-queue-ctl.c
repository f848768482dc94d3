/*
 * fuzz-queue-ctl — the admin socket's request parser (queue_ctl_parse) on
 * arbitrary request lines, as the server hands them over (without the LF),
 * in an exact-size heap copy so ASan sees any read past the line.
 *
 * Checks what queue-ctl.h promises: a failure carries a sentence; a request
 * that parses has a known verb, a line of at most QUEUE_CTL_MAX_LINE octets,
 * an id that spool_id_valid() accepts (or "" for retry-all), and is exactly
 * "VERB ID" or "retry-all" with at most one CR after it; formatting the
 * request again and parsing that gives the same request.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue-ctl.h"
#include "queue/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_ctl_request r, again;
	const char *error = NULL;
	char *line = malloc(size > 0 ? size : 1);

	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	if (queue_ctl_parse(line, size, &r, &error) < 0) {
		assert(error != NULL && error[0] != '\0');
		free(line);
		return 0;
	}
	assert(r.verb >= QUEUE_CTL_RETRY && r.verb <= QUEUE_CTL_RETRY_ALL);
	if (r.verb == QUEUE_CTL_RETRY_ALL)
		assert(r.id[0] == '\0');
	else
		assert(spool_id_valid(r.id));

	/* The line is the wire form of the request, a final CR aside. */
	char wire[QUEUE_CTL_MAX_LINE + 2];
	int n = snprintf(wire, sizeof(wire), "%s%s%s", queue_ctl_verb_name(r.verb),
	    r.id[0] != '\0' ? " " : "", r.id);
	assert(n > 0 && (size_t)n <= QUEUE_CTL_MAX_LINE);
	size_t len = size > 0 && line[size - 1] == '\r' ? size - 1 : size;
	assert(len == (size_t)n && memcmp(line, wire, len) == 0);
	assert(queue_ctl_parse(wire, (size_t)n, &again, &error) == 0);
	assert(again.verb == r.verb && strcmp(again.id, r.id) == 0);
	free(line);
	return 0;
}
