"""remediate: carry out a decision (write-ahead record -> act -> record) through ports."""
