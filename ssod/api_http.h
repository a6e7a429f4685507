/* api_http.h: the REST API's side of libmicrohttpd (see api_http.c). HTTP thread only. */
#ifndef KW_SSOD_API_HTTP_H
#define KW_SSOD_API_HTTP_H

#include <limits.h>

#include <microhttpd.h>

#include "api.h"

/* What a worker needs of the request (headers, query parameters, the client's address from
 * peer "host:port" or "[v6]:port"); the body is added later. Freed by kw_api_request_free(). */
struct kw_api_request *kw_api_http_request(struct MHD_Connection *c, const char *url,
					   const char *method, const char *peer);
/* The announced Content-Length: 0 when none, ULLONG_MAX when malformed. */
unsigned long long kw_api_http_length(struct MHD_Connection *c);
/* Queues the answer with the headers of every answer of ssod and those the answer asks for
 * (WWW-Authenticate, Allow, Location, Retry-After when retry_after > 0). */
enum MHD_Result kw_api_http_queue(struct MHD_Connection *c, const struct kw_api_answer *a,
				  unsigned retry_after);

#endif
