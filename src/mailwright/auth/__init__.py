"""Accounts' credentials: argon2id hashes, SASL PLAIN/LOGIN decoding, failed-login throttling.

Invariants:
- A plaintext password exists only in memory, for the duration of one verification; it is never
  stored, logged or put in an exception message.
- A wrong password and an unknown user take the same path and the same time (a dummy hash is
  verified for unknown users) and give the same answer, so replies do not reveal who exists.
"""
