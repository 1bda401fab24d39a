"""Telemetry (P12) and privacy-friendly web analytics (P23): ingest, aggregate, report.

Two streams share one pipeline (HTTPS -> Pub/Sub `telemetry-events` -> daily counters in Firestore):

- product telemetry: events about features used by a signed-in account; the raw events keep the
  (opaque, pseudonymous) account id, are archived to Cloud Storage for 90 days, and are exported and
  erased with the account;
- web analytics: anonymous events of the websites; nothing identifying is stored anywhere: the IP
  address gives a country and is dropped, the user agent is reduced to families, URLs lose their
  query string (except `utm_*`), referrers keep their domain, visitors are counted with a hash
  keyed by a random daily salt that is deleted after 48 hours.
"""
