"""Sleep on the host: wake/REM/NREM per 30-s epoch from beats (+ device signals) and metrics."""
