# The static binary from `make build`; nothing to pull, nothing to compile
# here. Run with the engine socket or --engine flags, e.g.
#   docker run -v /var/run/docker.sock:/var/run/docker.sock -p 2375:2375 \
#     clocker serve --listen tcp://0.0.0.0:2375 --insecure
FROM scratch
COPY bin/clocker /clocker
VOLUME /var/lib/clocker
EXPOSE 2375
ENTRYPOINT ["/clocker"]
CMD ["serve"]
