// Package radius is radotp's RADIUS authentication server: it receives
// Access-Request and Status-Server packets over UDP, checks them, asks a
// Verifier for a decision and answers the NAS.
//
// The package owns its read loop and uses layeh.com/radius only to parse
// packets, read attributes and decrypt User-Password. A request goes through
// these steps, in this order; each one can drop it, and every drop is reported
// to the Observer with one of DropReasons and logged (rate-limited, at most
// one Warn line per reason every 10 s, with the number suppressed):
//
//  1. One goroutine per connection reads datagrams into a buffer larger than
//     the 4096-byte RADIUS maximum. The source address selects a Client by
//     longest matching prefix; an unknown source is dropped (unknown_client).
//  2. Sanity checks (RFC 2865, RFC 3579): datagram at least 20 bytes, Length
//     field 20..4096 and not more than was received (bytes past Length are
//     padding and ignored), attributes well formed and inside Length, code
//     Access-Request or Status-Server, User-Name, User-Password, State and
//     Message-Authenticator at most once each, User-Password 16..128 bytes in
//     steps of 16, Message-Authenticator exactly 16 bytes (malformed).
//  3. Message-Authenticator (HMAC-MD5 keyed with the client secret) is checked
//     before anything else looks at the request. It must be present when the
//     client requires it and always on Status-Server (RFC 5997)
//     (missing_message_authenticator); when present it must be right, whether
//     required or not (bad_message_authenticator).
//  4. The reply cache (RFC 5080 section 2.2.2), keyed by source address and
//     port, Identifier and Request Authenticator: a retransmission of an
//     answered request gets the cached reply bytes again, without asking the
//     Verifier; a retransmission of a request still being worked on is
//     dropped (duplicate_in_flight). Entries live ReplyCacheTTL; when
//     ReplyCacheSize live entries exist, new requests are dropped (overload)
//     rather than evicting an answer a NAS may still ask for again.
//  5. A bounded queue feeds a fixed pool of workers; when the queue is full
//     the request is dropped (overload) and the NAS retries or fails over.
//  6. A worker decodes the request into a verifier.Attempt and calls the
//     Verifier. An error drops the request (storage_error) and removes it
//     from the reply cache, so the NAS's retransmission is tried again.
//     Requests without User-Password (CHAP, MS-CHAP, EAP) are rejected
//     without asking the Verifier: radotp supports PAP only.
//  7. The reply is built by hand: Message-Authenticator first, then State and
//     Reply-Message for a Challenge, then every Proxy-State of the request in
//     order; then the Response Authenticator. Every Access-Reject has the same
//     shape whatever the reason. Status-Server is answered with an
//     Access-Accept carrying only Message-Authenticator (and Proxy-State).
//     The reply is stored in the reply cache, sent, and reported to the
//     Observer with one of AnswerKinds.
//
// Each decision is logged at Info: user, client, source, outcome, reason and
// duration. Passwords, codes, secrets and packet contents are never logged.
package radius
