"""Departments, users, roles and their grants, API tokens, cockpit sessions."""
