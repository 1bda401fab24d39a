"""Marketing consent (P18): the account holder's yes or no to marketing mail, and its history.

- `model.py`: the consent, a change, the sources a change may come from.
- `stores.py`: `FirestoreConsentStore` (owns `marketing_consents` and `marketing_consent_history`);
  `memory.py` its in-memory twin.
- `service.py`: `ConsentService.current / change / history / unsubscribe`.
- `tokens.py`: the signed one-click unsubscribe tokens (RFC 8058).
- `gate.py`: what the mailer asks before it sends a marketing mail.
- `sync.py`: the `consent-sync` jobs that carry a change to the processors that send marketing.
- `digest.py`: the monthly tips digest, the one marketing mail.
"""
