"""Running Twooter's several-machine topology on one machine: nothing production depends on."""
