// Package iysclient is the production client of İYS's REST API (İleti Yönetim
// Sistemi), as described in docs/iys-api.md.
//
// One Client is one İYS API user: it holds the one access token of that user,
// shared by every goroutine, refreshed shortly before it expires through a
// single request in flight, and it never logs in more than it must, because
// İYS caps logins per hour (H084) and then refuses them for about an hour.
//
// Every call takes a context; bulk submissions are paced by an adaptive rate
// limiter (IYS_RATE_LIMIT counts bulk requests), which a 429 on any call
// slows down for a while. Every call retries what can pass (network errors, 429, 500/502/503/504 and İYS's
// transient codes) with a fresh exponential backoff per call, obeying
// Retry-After. A verdict (400, 403, 404, 422 and İYS's rule codes) is never
// retried: it is returned as an *APIError whose Class says what it means.
//
// Nothing here logs a request body, a password or a token; recipients in logs
// are masked with consent.MaskRecipient.
package iysclient
