"""Services shared by the CLI and the GUI: the open library, enrolment and recognition."""
