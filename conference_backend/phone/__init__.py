"""Joining by phone: a SIP gateway (room number then #) bridged into the live rooms."""
