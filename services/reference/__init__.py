"""Reference data: the files a user supplies (Medicare PFS, contracts, SCAs, roster, network...)."""
