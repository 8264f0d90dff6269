"""One folder per check, each in three stages: acquire (ask the server), read (parse answers), judge (states)."""
