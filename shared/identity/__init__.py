"""Identity: accounts, passwords, Google sign-in, sessions, second factor (P1-P3, P15, P16, P21, P22, P25)."""
