"""China–Russia relations facts bot: a curated, cited fact base and a Telegram bot that answers from it."""
