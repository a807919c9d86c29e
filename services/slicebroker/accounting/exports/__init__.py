"""Export encoders of accounting: charge rows to CSV, JSON Lines and FOCUS (CSV and Parquet), one
batch at a time, so an export of any size streams in constant memory."""
