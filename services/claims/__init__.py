"""Claim context: facts of the submitted claim that the 835 lacks (place of service ZIP, specialty...)."""
