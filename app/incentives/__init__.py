"""Incentives: tasks, invite rewards, grade upgrades, leaderboards; and the audit log."""
