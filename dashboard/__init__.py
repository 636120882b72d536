"""Energy and network dashboard (issue #6): back-office page, platform API and CSV export, EVSE status history."""
