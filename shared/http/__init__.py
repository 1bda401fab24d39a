"""HTTP helpers shared by every HTTP function: the resolver, routers and problem details."""

from shared.http.app import HttpApp, Request, Response, Router
from shared.http.problems import Problem

__all__ = ["HttpApp", "Problem", "Request", "Response", "Router"]
