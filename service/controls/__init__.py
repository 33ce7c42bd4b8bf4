"""The controls an ad platform needs around the auction: eligibility and brand safety, frequency caps, budgets and
pacing, reserve prices (state in Redis, shared by every replica), and the admin API that sets them."""
