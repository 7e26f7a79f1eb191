// Package sandbox is a local İYS: it speaks the İYS API of
// docs/iys-api.md (same paths, bodies, codes and rules) so that an
// integration can be tried, and tested, without İYS, which offers solution
// partners no test environment. It is an independent implementation of the
// wire format: it shares no types with the project's İYS client, only the
// domain (package consent), whose Evaluate is İYS's verdict on a consent.
//
// # The İYS API
//
// POST /oauth2/token (password and refresh grants, JSON body) gives a token
// pair; every other call needs `Authorization: Bearer` with a live access
// token, else 401 H351. Under /sps/{iysCode}/brands/{brandCode}:
//
//	POST /consents                                  one consent → {transactionId, creationDate}
//	POST /consents/request                          1..1000 consents → {requestId, subRequests}
//	GET  /consents/request/{requestId}              [{index, subrequestId, status, transactionId?, creationDate?, error?}]
//	POST /consents/status                           {recipient, recipientType, type} → the record, or 404 H404
//	POST /consents/{recipientType}/status/{type}    {recipients} → {list: those holding ONAY}
//	GET  /consents/changes?source=IYS|HS&after=&limit=  {after, list}
//	GET  /changes/{reportDate}/file                 CSV of a day's changes
//	GET  /changes/{reportDate}/recipients/{BIREYSEL|TACIR}  a day's counts per type and source
//
// and GET /sps/{iysCode}/brands, GET /integrator/{integratorCode}/sps/{iysCode}.
//
// # Admin endpoints
//
// Outside the İYS API, for tests and demos; no token, no faults, no latency.
// Errors use İYS's error body.
//
//	GET    /_sandbox/consents[?brandCode=B][&iysCode=I]
//	       → [{"iysCode","brandCode","recipient","recipientType","type","status",
//	           "consentDate","source","creationDate","transactionId"}], records İYS holds
//	POST   /_sandbox/citizen  {"iysCode","brandCode","recipient","recipientType","type","status","source"}
//	       a citizen's change through İYS (source IYS_WEB, IYS_MOBIL, ... any IYS_*), dated now;
//	       it shows in the changes feed under source=IYS. → the record
//	PUT    /_sandbox/consents {"iysCode","brandCode","recipient","recipientType","type","status","source","consentDate"?}
//	       overwrites a record behind the client's back (drift tests): no rule, no feed
//	       entry, no daily file line; consentDate defaults to now. → the record
//	DELETE /_sandbox/consents {"iysCode","brandCode","recipient","recipientType","type"}
//	       İYS forgets a record, silently. → the record it held, or 404
//	GET    /_sandbox/stats  → {"requests":{route pattern: n},"throttled","throttledByCode",
//	       "faults","faultsByStatus","tokens":{"logins","refreshes"},"unauthorized",
//	       "forbidden","recorded","refused":{code: n}}
//	POST   /_sandbox/reset  empties it (see Sandbox.Reset) → 204
//	GET    /_sandbox/rights → {"denyBrands":[...],"rules":[RightRule...]}
//	POST   /_sandbox/rights {"iysCode"?,"brandCode"?,"type"?,"right"?,"granted"}
//	       appends a RightRule: e.g. {"brandCode":"B","type":"ARAMA","right":"write","granted":false}
//	POST   /_sandbox/deny   {"brandCode","denied"} ends or restores a partnership (as --deny-brand)
//	POST   /_sandbox/brands {"iysCode","brandCode","name"?,"master"?} registers a brand
//
// # Decisions where docs/iys-api.md is silent
//
//   - Codes and statuses: a value İYS cannot take (ClassInvalid codes) is 422,
//     a rule against what İYS holds and a bad request 400, rights 403 H353
//     (H245 for another integrator code), an unknown request id or record 404
//     H404. An unreadable body is 400 with no code: İYS publishes none and
//     the sandbox invents none.
//   - Bulk requests: what cannot be read as a consent (unknown type, status,
//     source or recipient type, a bad recipient, an unreadable date, HS_KARAR
//     with ONAY) refuses the request whole, with each bad item's index
//     counting from 1 like the results; so do more than 1000 items (H125) and
//     a repeated recipient+recipientType+type (H194, at the repeat). The
//     date's range (H155, H156, H162) and the rules on what İYS holds (H174,
//     H175, H178, H467) are verdicts per item, made when the item is
//     processed, at the end of the async delay, in item order. Results come
//     back shuffled, the same order on every poll; enqueue items carry no
//     transactionId or creationDate. The answer is 200.
//   - Email recipients are keyed trimmed and lower-cased, as
//     consent.NormalizeEmail does; phones as sent (E.164 checked). Answers
//     echo recipients as sent.
//   - Citizen changes: a citizen can always opt in or out, also with no
//     earlier record (no H175) and whatever the brand's dates; the status
//     already held is refused (H174) and changes nothing.
//   - Tokens: a refresh token is good for one refresh; an unknown, used or
//     expired one is 401 H351; bad credentials 401 with no code. Options.
//     LoginLimit caps password logins per hour (429 H084 + Retry-After).
//     A reset keeps tokens.
//   - Rate limit: only bulk submissions are limited, with a token bucket of
//     BulkRate per second and a burst of one second's worth; the 429 carries
//     H083 or H124 at random and Retry-After in whole seconds.
//   - Faults: a faulted call is answered before its body is read, so it has
//     no effect; 500 comes as İYS JSON, 503 as a gateway's HTML page.
//   - Changes feed: `after` is bound to its brand and source (another
//     brand's or side's cursor is 400, as is one of before a reset); limit
//     defaults to 1000 and is cut to 1000. A cursor older than 7 days goes
//     on from the oldest change kept. İYS leaves out the latest hour: that is
//     Options.FeedDelay, 0 by default. Options.FeedPageCap (--page-cap)
//     answers at most that many changes a page whatever the limit asked,
//     as an İYS with shorter pages would. Options.FeedEntry lets a test
//     rewrite each entry as it is served (a date in another layout, a
//     field left out), with no other effect: the feed's order and cursors
//     stay as they were.
//   - Daily file and summary: a Türkiye calendar day (reportDate YYYY-MM-DD)
//     by creation date, both sides; a day not over yet is 404 H404. CSV
//     columns: consentDate,creationDate,source,recipient,recipientType,status,
//     type,transactionId. Changes are kept for the sandbox's life, so files
//     reach back further than the feed.
//   - Brands are registered by Options.Brands, POST /_sandbox/brands or
//     their first write; the first of an İYS code is its master. A brand
//     without partnership is left out of GET /sps/{iysCode}/brands.
package sandbox
