"""Scheduled e-mail reports (SPEC §17): a dashboard e-mailed as PDF or PNG at its slots."""
