"""Message authentication: SPF, DKIM and DMARC (RFC 7208, 6376, 7489) and
Authentication-Results (RFC 8601).
"""
