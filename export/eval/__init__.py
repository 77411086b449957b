"""Step 5 of the workshop, evaluation material: what `aigc-studio eval` measures the shipped models
against. `sets` cuts the held-out and Brown evaluation texts from the step-1 corpora; `fid` trains the
small emoji/icon classifier whose features define domain FID/KID and writes it as an image-features
package.
"""
