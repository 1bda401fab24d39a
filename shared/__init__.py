"""The common package of the privacy backend: config, logging, HTTP, adapters, domain and services.

Every module names the policy promise (P1..P30, see ../shared/POLICY.md beside the repo) it keeps.
"""
