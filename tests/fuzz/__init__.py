"""Property-based fuzzing of the request path (hypothesis): cookies, X-Forwarded-For,
the id header, stored payloads and the merge path. Every case must answer 200 or 503
(never a 500 or an exception), cost no store call for a malformed id, and send no
Set-Cookie for the session but a deletion or a fresh well-formed id.

``QS_FUZZ_EXAMPLES`` sets the examples per target (see ``conftest.py``).
"""
