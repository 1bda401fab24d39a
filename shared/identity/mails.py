"""The identity mails (P16, P21, P22, P25). Transactional: sent whatever the marketing consent (P18)."""

from __future__ import annotations

from urllib.parse import quote

from shared.adapters.mail import Mail


def verification(to: str, first_name: str, base_url: str, token: str, minutes: int) -> Mail:
    # The token rides in the fragment (#token=), which browsers never send to a server: no log holds it.
    link = f"{base_url}/auth/verify-email#token={quote(token)}"
    return Mail(
        to=to,
        subject="Confirm your email address",
        category="security",
        text=(
            f"Hello {first_name},\n\nConfirm that this address is yours to finish creating your WizyVision "
            f"account. The page asks for the password you chose when you signed up:\n\n{link}\n\n"
            f"The link works once and expires in {minutes} minutes. "
            "If you did not sign up, ignore this message: no account will be usable without it."
        ),
    )


def already_registered(to: str, first_name: str, base_url: str) -> Mail:
    return Mail(
        to=to,
        subject="Someone tried to create an account with your address",
        category="security",
        text=(
            f"Hello {first_name},\n\nSomeone just tried to create a WizyVision account with this email "
            "address, which already has an account. If it was you, sign in instead; if you forgot your "
            f"password, reset it here:\n\n{base_url}/auth/reset-password\n\nIf it was not you, you can ignore "
            "this message: nothing has changed on your account."
        ),
    )


def email_change(to: str, first_name: str, base_url: str, token: str, minutes: int) -> Mail:
    link = f"{base_url}/auth/confirm-email-change#token={quote(token)}"
    return Mail(
        to=to,
        subject="Confirm your new email address",
        category="security",
        text=(
            f"Hello {first_name},\n\nConfirm that this address should become the login of your WizyVision "
            f"account:\n\n{link}\n\nThe link works once and expires in {minutes} minutes."
        ),
    )


def email_change_notice(to: str, first_name: str, new_email: str) -> Mail:
    return Mail(
        to=to,
        subject="A change of your login address was requested",
        category="security",
        text=(
            f"Hello {first_name},\n\nA change of your WizyVision login to {new_email} was requested. It takes "
            "effect only once the new address is confirmed. If this was not you, change your password now."
        ),
    )


def new_device(to: str, first_name: str, when: str, ip: str, user_agent: str) -> Mail:
    return Mail(
        to=to,
        subject="New sign-in to your WizyVision account",
        category="security",
        text=(
            f"Hello {first_name},\n\nYour account was just signed in to from a device or network we had not "
            f"seen before.\n\nWhen: {when}\nIP address: {ip}\nDevice: {user_agent or 'unknown'}\n\n"
            "If this was you, there is nothing to do. If not, change your password now: every other session "
            "ends when you do, and consider turning on the second factor."
        ),
    )


def password_changed(to: str, first_name: str) -> Mail:
    return Mail(
        to=to,
        subject="Your password was changed",
        category="security",
        text=(
            f"Hello {first_name},\n\nThe password of your WizyVision account was just changed, and every other "
            "session was signed out. If this was not you, reset your password at once and contact support."
        ),
    )


def password_reset(to: str, first_name: str, app_url: str, token: str, minutes: int) -> Mail:
    link = f"{app_url}/auth/reset-password#token={quote(token)}"
    return Mail(
        to=to,
        subject="Reset your password",
        category="security",
        text=(
            f"Hello {first_name},\n\nChoose a new password with this single-use link (it expires in "
            f"{minutes} minutes):\n\n{link}\n\nEvery session of your account ends when the password is "
            "reset. If you did not ask for this, ignore this message: your password stays as it is."
        ),
    )


def second_factor_changed(to: str, first_name: str, enabled: bool) -> Mail:
    state = "turned on" if enabled else "turned off"
    return Mail(
        to=to,
        subject=f"Two-step verification {state}",
        category="security",
        text=(
            f"Hello {first_name},\n\nTwo-step verification was just {state} for your WizyVision account. "
            "If this was not you, change your password now."
        ),
    )


def google_linked(to: str, first_name: str, ip: str, user_agent: str, base_url: str) -> Mail:
    return Mail(
        to=to,
        subject="Google sign-in was linked to your account",
        category="security",
        text=(
            f"Hello {first_name},\n\nA Google account with this address was just used to sign in to your "
            f"WizyVision account, and is now linked to it.\n\nIP address: {ip}\nDevice: {user_agent or 'unknown'}"
            "\n\nIf this was you, there is nothing to do. If not, reset your password now "
            f"({base_url}/auth/reset-password) and contact support: every session ends when you do."
        ),
    )


def second_factor_removed_by_staff(to: str, first_name: str) -> Mail:
    return Mail(
        to=to,
        subject="Two-step verification removed by support",
        category="security",
        text=(
            f"Hello {first_name},\n\nAt your request, our support team removed two-step verification from "
            "your WizyVision account, and every session was signed out. Turn it on again from your security "
            "settings. If you did not ask for this, contact support at once."
        ),
    )


def account_reactivated(to: str, first_name: str) -> Mail:
    return Mail(
        to=to,
        subject="Your account is active again",
        category="security",
        text=(
            f"Hello {first_name},\n\nYou signed in and confirmed that you want to keep your WizyVision account: "
            "its cancellation is called off and it will not be deleted. If this was not you, reset your "
            "password now and contact support."
        ),
    )
