"""What an operator does to a hub's data dir: back it up, restore it, upgrade its format,
apply retention, and watch the disk it lives on."""
